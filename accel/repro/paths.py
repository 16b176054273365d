"""Output locations checked before any work starts: a clear error instead of a traceback.

A folder that is a file, or one the user may not write to, would otherwise surface
as an ``OSError`` from deep inside papermill after a kernel has started. Nothing here
creates anything: the checks look at the path and its nearest existing parent.
"""
from __future__ import annotations

import os
from pathlib import Path


def _existing_parent(path: Path) -> Path:
    current = path.absolute()
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def check_output_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """``path`` if it is (or can be created as) a writable folder, else a ValueError saying why."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{what} {path} is a file, not a folder; choose another --out")
    parent = _existing_parent(path)
    if not parent.is_dir():
        raise ValueError(f"{what} {path} cannot be created: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{what} {path} is not writable (no write permission on {parent}); "
                         f"choose another --out")
    return path


def check_output_file(path: str | os.PathLike, what: str = "output file") -> Path:
    """``path`` if a file can be written there (its folder checked as above)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} {path} is a folder; give a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"{what} {path} is not writable")
    check_output_dir(path.parent, f"folder of the {what}")
    return path
