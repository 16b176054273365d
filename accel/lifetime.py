"""Child processes that end with their parent.

A worker process (a trial of ``accel race``, a rank of a gloo launch) that outlives a
killed parent keeps a core busy and, for a pool worker, blocks forever on a queue no
one writes to: ``multiprocessing`` cleans up after a parent that exits, not after one
killed by SIGKILL or by SIGTERM's default action. On Linux the child asks the kernel to
send it a signal when its parent dies (``prctl(PR_SET_PDEATHSIG)``); elsewhere this is a
no-op and the callers' own timeouts remain the bound.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int, sig: int = signal.SIGKILL) -> bool:
    """Have the kernel send ``sig`` to this process when its parent dies; True if it could.

    ``parent`` is the pid the caller expects as parent: if it is already gone (the parent
    died before the request took effect), the process exits at once.
    """
    armed = False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        armed = libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        pass  # not Linux
    if os.getppid() != parent:
        os._exit(1)
    return armed
