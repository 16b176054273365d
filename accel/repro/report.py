"""The reproducibility report: one row per claim from every executed chapter's record.

``accel book`` calls :func:`write_report` on the executed notebooks' folder; ``accel
report FOLDER`` does the same by hand. Verdicts are copied from the records, never
typed in: a failed claim is listed as failed, with its measured value and criterion.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from ..atomic import write_text_atomic
from .claims import CLAIM, FAILED, HELD, INCONCLUSIVE
from .results import load

_MARK = {HELD: "✅ held", FAILED: "❌ failed", INCONCLUSIVE: "➖ inconclusive"}
COLUMNS = ["chapter", "kind", "claim", "source", "measured", "criterion", "verdict", "profile", "seed"]


def claims_table(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per claim: chapter, statement, source, measured, criterion, verdict, profile, seed."""
    rows = []
    for rec in records:
        for c in rec.get("claims", []):
            rows.append({"chapter": rec["notebook"], "kind": c.get("kind", "claim"),
                         "claim": c["statement"], "source": c["source"],
                         "measured": c["measured"], "criterion": c["criterion"], "verdict": c["verdict"],
                         "profile": rec["profile"], "seed": rec["seed"]})
    return pd.DataFrame(rows, columns=COLUMNS)


def find_records(folder: str | Path) -> list[dict[str, Any]]:
    """Every complete results record under ``folder``, in path order.

    Skipped: hidden files (a run's ``.partial`` record, which an interrupted run can
    leave complete but unrenamed), incomplete or unreadable files and JSON that is not
    a results record (a sweep's ``params.json``). Each record gets the chapter's title
    (``title``) when its executed notebook lies next to it.
    """
    folder, records = Path(folder), []
    for path in sorted(folder.rglob("*.json")):
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        try:
            record = load(path)
        except (OSError, ValueError, json.JSONDecodeError):
            continue
        if not isinstance(record, dict) or not {"notebook", "profile", "seed"} <= set(record):
            continue
        title = notebook_title(path.with_suffix(".ipynb"))
        if title:
            record["title"] = title
        records.append(record)
    return records


def notebook_title(path: str | os.PathLike) -> str | None:
    """The first ``# heading`` of a notebook's markdown cells, if the notebook exists."""
    try:
        cells = json.loads(Path(path).read_text()).get("cells", [])
    except (OSError, ValueError):
        return None
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            source = "".join(cell.get("source", ""))
            for line in source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return None


def _number(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        shown = ", ".join(_number(v) for v in value[:4])
        return f"[{shown}{', …' if len(value) > 4 else ''}]"
    return str(value)


def _cell(value: Any) -> str:
    return " ".join(str(value).split()).replace("|", "\\|")


def _row(cells: Iterable[Any]) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def render(records: list[dict[str, Any]], chapter_dir: str = "../notebooks") -> str:
    """The report page as MyST markdown: the counts, a table per chapter, one row per claim."""
    table = claims_table(records)
    lines = ["# Reproducibility report", "",
             "Every claim the chapters test, with the number measured in this build and the "
             "verdict computed from it by the criterion the chapter fixed before running. "
             "Verdicts are not edited by hand: a claim that failed at this profile is listed as "
             "failed, with its numbers.", ""]
    if not records:
        lines += ["No results records were found. Run `make book` (or `accel book`) to execute the "
                  "chapters and fill in this page.", ""]
        return "\n".join(lines)
    evidence = table[table["kind"] == CLAIM]
    counts = evidence["verdict"].value_counts()
    checks = table[table["kind"] != CLAIM]
    lines += [f"**Empirical claims: {counts.get(HELD, 0)} held / {counts.get(FAILED, 0)} failed / "
              f"{counts.get(INCONCLUSIVE, 0)} inconclusive** (of {len(evidence)}). Checks and single-run "
              f"illustrations, reported apart and not counted as evidence: {len(checks)} "
              f"({int((checks['verdict'] == HELD).sum())} passed).", ""]
    profiles = sorted({str(r["profile"]) for r in records})
    wall = sum(float(r.get("wall_time_s", 0)) for r in records)
    lines += [f"Profile: {', '.join(profiles)}. Notebook wall time in total: {wall:.0f} s.", ""]
    versions = records[0].get("versions") or {}
    if versions and all(r.get("versions") == versions for r in records):
        lines += ["Package versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".", ""]

    link = {r["notebook"]: f"[{r.get('title', r['notebook'])}]({chapter_dir}/{r['notebook']}.ipynb)"
            for r in records}
    lines += ["## By chapter", "", _row(["chapter", "claims", "held", "failed", "inconclusive", "checks",
                                         "profile", "seed"]), "|---|---|---|---|---|---|---|---|"]
    for chapter, group in table.groupby("chapter", sort=False):
        claims_only = group[group["kind"] == CLAIM]
        n = claims_only["verdict"].value_counts()
        lines.append(_row([link[chapter], len(claims_only), n.get(HELD, 0), n.get(FAILED, 0),
                           n.get(INCONCLUSIVE, 0), len(group) - len(claims_only),
                           ", ".join(sorted(set(map(str, group.profile)))),
                           ", ".join(sorted(set(map(str, group.seed))))]))
    failed = evidence[evidence["verdict"] == FAILED]
    if len(failed):
        lines += ["", "## Claims that did not hold", ""]
        for _, r in failed.iterrows():
            lines.append(f"- **{_cell(r.claim)}** ({link[r.chapter]}, {_cell(r.source)}): measured "
                         f"{_number(r.measured)}, criterion {_cell(r.criterion)}.")
    lines += ["", "## Every claim", "", _row(COLUMNS), "|" + "---|" * len(COLUMNS)]
    for _, r in table.iterrows():
        lines.append(_row([f"[{r.chapter}]({chapter_dir}/{r.chapter}.ipynb)", r.kind, r.claim, r.source,
                           _number(r.measured), r.criterion, _MARK.get(r.verdict, r.verdict),
                           r.profile, r.seed]))
    return "\n".join(lines) + "\n"


def write_report(records_dir: str | Path, out: str | Path, chapter_dir: str = "../notebooks") -> Path:
    """Render the records under ``records_dir`` into ``out`` (written atomically)."""
    return write_text_atomic(out, render(find_records(records_dir), chapter_dir))
