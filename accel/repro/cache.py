"""The book's execution cache: a chapter is re-executed only when what it ran could differ.

An entry is keyed on what a run depends on (:func:`cache_key`): the notebook's code
cells (not its Markdown), the parameters, the profile, the pins (``constraints.txt``)
and the device kind. It is then *validated* against every local module the run imported
(the results record lists them with their files' hashes, see
:func:`accel.repro.provenance.imported_modules`): an edit to ``accel/optim/`` invalidates
exactly the chapters that imported it. jupyter-cache keys on the code cells alone and
would miss that, hence this small content-hash store.

Layout: ``CACHE/<notebook>/<key>/`` holds ``executed.ipynb`` (papermill's output, before
the book's rendering), ``record.json`` and ``entry.json``, written last and atomically:
an entry without a readable ``entry.json``, whose record is incomplete or whose notebook
cannot be read is a miss, never a crash or a stale result. A prose-only edit is served
from the cache by :func:`merge_prose`: the new Markdown cells with the cached outputs.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import atomic_path, write_json_atomic
from .notebook import code_source
from .provenance import device_kind, file_hash

CACHE_VERSION = 1
ENTRY = "entry.json"
EXECUTED = "executed.ipynb"
RECORD = "record.json"
TIMINGS = "timings.json"
INJECTED_TAG = "injected-parameters"  # papermill's cell after the parameters cell
KEEP = 3  # entries kept per notebook (an edit undone is served again)


def cache_key(nb: Any, params: dict[str, Any], profile: str, constraints: str | os.PathLike | None,
              device: str | None = None) -> str:
    """A hash of what an execution depends on, except the imported modules (validated apart)."""
    pins = Path(constraints).read_bytes() if constraints and Path(constraints).exists() else b""
    payload = {"version": CACHE_VERSION, "code": code_source(nb),
               "params": json.loads(json.dumps(params, sort_keys=True, default=repr)),
               "profile": profile, "constraints": hashlib.sha256(pins).hexdigest(),
               "device": device or device_kind()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


@dataclass
class Entry:
    """A valid cache entry: where its executed notebook and record are, how long it ran."""
    folder: Path
    meta: dict[str, Any]

    @property
    def executed(self) -> Path:
        return self.folder / EXECUTED

    @property
    def record(self) -> Path:
        return self.folder / RECORD

    @property
    def seconds(self) -> float:
        return float(self.meta.get("seconds", 0.0))


class ExecutionCache:
    """Entries under ``folder``; ``root`` is where relative module paths are resolved."""

    def __init__(self, folder: str | os.PathLike, root: str | os.PathLike = "."):
        self.folder, self.root = Path(folder), Path(root).resolve()

    # ------------------------------------------------------------ lookup

    def lookup(self, stem: str, key: str) -> tuple[Entry | None, str]:
        """The valid entry for ``key``, else None and why it is a miss (for the build's log)."""
        folder = self.folder / stem / key
        try:
            meta = json.loads((folder / ENTRY).read_text())
            if meta.get("key") != key or meta.get("version") != CACHE_VERSION:
                return None, "entry for another key"
            from .results import load
            load(folder / RECORD)
            _read_nb(folder / EXECUTED)
        except FileNotFoundError:
            others = (self.folder / stem).is_dir() and any((self.folder / stem).iterdir())
            return None, ("code, parameters, profile, pins or device changed" if others else "not cached")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            return None, f"unreadable entry ({type(err).__name__})"
        changed = self.changed_modules(meta.get("modules", {}))
        if changed:
            return None, f"changed: {', '.join(changed[:3])}{' …' if len(changed) > 3 else ''}"
        return Entry(folder, meta), "cached"

    def changed_modules(self, modules: dict[str, dict[str, str]]) -> list[str]:
        """The modules whose file is gone or differs from the hash recorded at run time."""
        changed = []
        for name, info in modules.items():
            path = self._path(info["file"])
            try:
                if file_hash(path) != info["sha256"]:
                    changed.append(name)
            except OSError:
                changed.append(name)
        return changed

    # ------------------------------------------------------------ store

    def store(self, stem: str, key: str, executed: Path, record: Path, seconds: float,
              extra: dict[str, Any] | None = None) -> Entry:
        """Copy one execution in; ``entry.json`` last, so a half-written entry is a miss."""
        from .results import load

        rec = load(record)
        folder = self.folder / stem / key
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        for src, name in ((executed, EXECUTED), (record, RECORD)):
            with atomic_path(folder / name) as tmp:
                shutil.copyfile(src, tmp)
        modules = {name: {"file": self._relative(info["file"]), "sha256": info["sha256"]}
                   for name, info in (rec.get("modules") or {}).items()}
        meta = {"version": CACHE_VERSION, "key": key, "notebook": stem, "seconds": seconds,
                "device": rec.get("device"), "profile": rec.get("profile"), "created": time.time(),
                "modules": modules, **(extra or {})}
        write_json_atomic(folder / ENTRY, meta)
        self.record_time(stem, seconds)
        self._prune(stem, keep=folder)
        return Entry(folder, meta)

    # ------------------------------------------------------------ wall times

    def timings(self) -> dict[str, float]:
        """The last recorded wall time of each notebook (seconds), for ordering and progress."""
        try:
            data = json.loads((self.folder / TIMINGS).read_text())
            return {str(k): float(v) for k, v in data.items()}
        except (OSError, ValueError, AttributeError, TypeError):
            return {}

    def record_time(self, stem: str, seconds: float) -> None:
        times = self.timings()
        times[stem] = round(float(seconds), 2)
        write_json_atomic(self.folder / TIMINGS, times)

    # ------------------------------------------------------------ helpers

    def _relative(self, file: str) -> str:
        path = Path(file)
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def _path(self, file: str) -> Path:
        path = Path(file)
        return path if path.is_absolute() else self.root / path

    def _prune(self, stem: str, keep: Path) -> None:
        entries = sorted((p for p in (self.folder / stem).iterdir() if p.is_dir() and p != keep),
                         key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[KEEP - 1:]:
            shutil.rmtree(old, ignore_errors=True)


def _read_nb(path: Path) -> Any:
    import nbformat
    try:
        return nbformat.read(path, as_version=4)
    except FileNotFoundError:
        raise
    except Exception as err:  # noqa: BLE001 - any parse error: the entry is corrupt
        raise ValueError(f"{path} is not a notebook: {err}") from None


def merge_prose(source: Any, executed: Any) -> Any:
    """The cached execution with the source's current Markdown (a prose-only edit).

    The code cells must be the cached ones, in order (the cache key guarantees it;
    papermill's injected-parameters cell, which follows the ``parameters`` cell, is
    kept); each keeps its outputs, so glued values still resolve. ValueError if the
    code differs: the caller treats that as a miss.
    """
    import copy

    code = [c for c in executed.cells if c.cell_type == "code"]
    merged, i = [], 0
    for cell in source.cells:
        if cell.cell_type != "code":
            merged.append(copy.deepcopy(cell))
            continue
        if i >= len(code) or code[i].source != cell.source:
            raise ValueError("the cached execution's code cells differ from the notebook's")
        merged.append(code[i])
        i += 1
        while i < len(code) and INJECTED_TAG in code[i].metadata.get("tags", []):
            merged.append(code[i])
            i += 1
    if i != len(code):
        raise ValueError("the cached execution has code cells the notebook no longer has")
    out = copy.copy(executed)
    out.cells = merged
    return out
