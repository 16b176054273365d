"""Chapters are stored as text (MyST Markdown, jupytext) and executed as ``.ipynb``.

Text notebooks diff, lint and deduplicate like code; jupytext turns them into notebook
objects that papermill executes. ``.ipynb`` files are read as they are (the tests' tiny
notebooks, a reader's own).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

NOTEBOOK_SUFFIXES = (".md", ".ipynb")
PARAMETERS_TAG = "parameters"


def read_notebook(path: str | os.PathLike) -> Any:
    """The notebook at ``path`` as an ``nbformat`` node (a missing file is a clear error)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no notebook at {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not a notebook")
    if path.suffix not in NOTEBOOK_SUFFIXES:
        raise ValueError(f"{path} is not a notebook; expected one of {', '.join(NOTEBOOK_SUFFIXES)}")
    try:
        if path.suffix == ".md":
            import jupytext
            nb = jupytext.read(path, fmt="md:myst")
        else:
            import nbformat
            nb = nbformat.read(path, as_version=4)
    except Exception as err:  # noqa: BLE001 - any parse error becomes one clear message
        raise ValueError(f"{path} could not be read as a notebook: {err}") from None
    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
    return nb


def parameters_cell(nb: Any, name: str = "notebook") -> str:
    """The source of the (single) cell tagged ``parameters``."""
    cells = [c for c in nb.cells if c.cell_type == "code" and PARAMETERS_TAG in c.metadata.get("tags", [])]
    if not cells:
        raise ValueError(f"{name} has no cell tagged 'parameters'")
    if len(cells) > 1:
        raise ValueError(f"{name} has {len(cells)} cells tagged 'parameters'; papermill needs exactly one")
    return cells[0].source


def code_source(nb: Any) -> str:
    """Every code cell's source, in order: what an execution depends on (not the prose)."""
    return "\n# ---- cell\n".join(c.source for c in nb.cells if c.cell_type == "code")


_GLUE_ROLE = re.compile(r"\{glue(?::[a-z]+)?\}`([^`]+)`")
_GLUE_DIRECTIVE = re.compile(r"^[`:]{3,}\{glue(?::[a-z]+)?\}\s+(\S+)", re.M)


def glue_references(nb: Any) -> set[str]:
    """The glue keys the notebook's Markdown cells refer to (roles and directives)."""
    keys = set()
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        keys |= {m.rsplit(":", 1)[0] if ":" in m else m for m in _GLUE_ROLE.findall(cell.source)}
        keys |= set(_GLUE_DIRECTIVE.findall(cell.source))
    return keys


def glued_names(executed: Any) -> set[str]:
    """The keys an executed notebook glued (``myst_nb.glue`` writes them into output metadata)."""
    names = set()
    for cell in executed.cells:
        for out in cell.get("outputs", []):
            name = out.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:
                names.add(name)
    return names
