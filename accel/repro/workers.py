"""Worker processes that die with their parent, and take their kernels with them.

``kill -9`` of an ``accel sweep`` or ``accel book --jobs`` cannot run any cleanup in the
killed process, so each worker arranges its own end when it starts (the pool's
initializer, :func:`init_worker`):

- Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG, SIGTERM)``, via ctypes): the
  kernel signals the worker the moment its parent dies;
- a watch thread that notices the parent is gone (``os.getppid()`` changed), for
  systems without ``prctl`` and for a parent that died before the ``prctl`` call;
- either way the worker kills its own children (the Jupyter kernels it started) and
  exits. A kernel left alone would also exit within about a second: ipykernel polls
  for its parent (``JPY_PARENT_PID``), which the tests verify too.

The initializer also caps the worker's threads: parallel runs share the cores
(``cores // jobs`` each, through ``OMP_NUM_THREADS``/``MKL_NUM_THREADS``, which torch
reads at import, and ``ACCEL_NUM_THREADS``), unless the environment already sets them.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .provenance import THREADS_ENV

PR_SET_PDEATHSIG = 1
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", THREADS_ENV)


def cores() -> int:
    """The cores this process may use (its CPU affinity), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def threads_per_job(jobs: int) -> int:
    return max(1, cores() // max(1, jobs))


def set_threads(threads: int | None) -> None:
    """Cap the threads of the kernels this process starts (what the environment sets wins)."""
    if threads:
        for var in THREAD_VARS:
            os.environ.setdefault(var, str(threads))


def children(pid: int | None = None) -> list[int]:
    """Every descendant of ``pid`` (default: this process), from ``/proc`` (Linux)."""
    pid = pid or os.getpid()
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                kids = [int(c) for c in (task / "children").read_text().split()]
            except (OSError, ValueError):
                continue
            found += kids
            todo += kids
    return found


def kill_children() -> None:
    for pid in children():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _die(*_: object) -> None:
    kill_children()
    os._exit(1)


def init_worker(parent: int, threads: int | None = None) -> None:
    """Pool initializer: die (with the kernels) when ``parent`` dies; cap threads."""
    set_threads(threads)
    signal.signal(signal.SIGTERM, _die)
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the watch thread below does the job
    if os.getppid() != parent:  # the parent died before prctl took effect
        _die()
    threading.Thread(target=_watch, args=(parent,), daemon=True, name="accel-parent-watch").start()


def _watch(parent: int, interval: float = 0.5) -> None:
    while True:
        if os.getppid() != parent:
            _die()
        time.sleep(interval)


class output_to:
    """Send this process's file descriptors 1 and 2 (inherited by kernels) to a file (None: no-op).

    The kernels' own output (ipykernel's warnings, C-level prints) then lands in a log
    rather than interleaved with the progress lines of the terminal.
    """

    def __init__(self, path: Path | None):
        self.path = path

    def __enter__(self) -> None:
        if self.path is None:
            return
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        self.saved = [os.dup(1), os.dup(2)]
        self.file = open(self.path, "ab")
        for fd in (1, 2):
            os.dup2(self.file.fileno(), fd)

    def __exit__(self, *exc: Any) -> None:
        if self.path is None:
            return
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        for fd, saved in zip((1, 2), self.saved):
            os.dup2(saved, fd)
            os.close(saved)
        self.file.close()
