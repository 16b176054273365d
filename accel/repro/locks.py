"""One run at a time per run folder: an advisory lock (``fcntl.flock``) on ``<folder>/.lock``.

Two sweeps on the same output folder (or a sweep and a cluster worker retrying the same
run) must not execute one run twice at once: the second would delete the first's
partial files and race it to the record. The lock is the kernel's, not a file's
existence, so a process killed with ``kill -9`` releases it (nothing stale to clean
up); the file keeps the holder's pid for the message.
"""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

LOCK_FILE = ".lock"


class RunLocked(RuntimeError):
    """Another process holds this run's lock."""


def holder(folder: str | os.PathLike) -> str:
    try:
        return (Path(folder) / LOCK_FILE).read_text().strip() or "unknown"
    except OSError:
        return "unknown"


@contextmanager
def run_lock(folder: str | os.PathLike) -> Iterator[Path]:
    """Hold ``folder``'s lock for the block, or raise :class:`RunLocked` at once (never wait)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by kernels (O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunLocked(f"run {folder.name} is being executed by another process (pid {holder(folder)}) "
                        f"in {folder.parent}; not run twice at once. Rerun this sweep after that "
                        "one has finished to collect it") from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield path
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
