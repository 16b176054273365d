"""Atomic file writes: write beside the target under a hidden temporary name, then rename.

``os.replace`` is atomic on POSIX and Windows, so a reader (or a crash) only ever sees
the old file or the complete new one: a record, a figure, a checkpoint or a cache entry
is never half-written. Every layer of `accel` writes through here (the module uses only
the standard library, so the reproducibility layer may import it without torch).
"""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed.

    The temporary name keeps ``path``'s suffix, for writers that choose the format from it
    (``savefig``, ``np.savez``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        if tmp.exists():
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json_atomic(path: str | os.PathLike, payload: Any) -> Path:
    return write_text_atomic(path, json.dumps(payload, indent=2, default=str))
