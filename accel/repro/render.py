"""What the book adds to an executed chapter before Jupyter Book renders it, and the pages
it generates from the results records.

:func:`prepare_for_book` takes papermill's executed notebook and the chapter's results
record; :func:`finish_stage` writes the generated pages (the reproducibility report)
into the staged book sources. `accel book` calls both; nothing here executes code.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .report import write_report

INJECTED_TAG = "injected-parameters"


def prepare_for_book(executed: Any, record: dict[str, Any] | None, source: Path) -> Any:
    """The executed notebook as the book shows it: papermill's injected cell removed from view,
    machine paths scrubbed from the metadata."""
    for cell in executed.cells:
        tags = cell.metadata.get("tags", [])
        if INJECTED_TAG in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    pm = executed.metadata.get("papermill", {})
    for key in ("input_path", "output_path", "cwd"):
        pm.pop(key, None)
    return executed


def finish_stage(stage: Path, records_dir: Path) -> list[Path]:
    """Write the generated pages into the staged sources; return the files written."""
    return [write_report(records_dir, stage / "book" / "report.md")]
