"""Start N processes on this machine, joined by a gloo process group, and collect what each returns.

Data, pipeline and hybrid parallelism are measured here with real processes and real
communication (``torch.distributed`` over gloo on localhost), not a simulation. Each
process is one "device" with its own interpreter, its own threads (one by default) and its
own copy of the model; they talk only through the process group.

:func:`launch` spawns the processes with ``torch.multiprocessing`` (start method
``spawn``: a fresh interpreter each), runs ``fn(rank, world_size, *args)`` in every one
and returns the ranks' return values in rank order. The processes never outlive the call:

- the parent waits with a deadline (``timeout``) and terminates, then kills, every process
  still alive when it returns or raises, whatever the reason;
- each process asks Linux to kill it when its parent dies (``PR_SET_PDEATHSIG``), so a
  killed kernel does not leave ranks behind, and the process group's own ``timeout``
  bounds every collective;
- each rank's stdout and stderr go to a log file, whose tail is part of the error if a
  rank fails (no output from the ranks reaches the page).

``init=False`` leaves the process group to ``fn``, with the environment a launcher such
as ``torchrun`` would set (``MASTER_ADDR``, ``MASTER_PORT``, ``RANK``, ``LOCAL_RANK``,
``WORLD_SIZE``): Lightning's DDP strategy then uses these processes instead of starting
its own.
"""
from __future__ import annotations

import datetime
import os
import pickle
import shutil
import socket
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ...lifetime import die_with_parent

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port that is free on localhost now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _entry(rank: int, fn: Callable[..., Any], world_size: int, port: int, folder: str,
           args: tuple, init: bool, threads: int, timeout: float, parent: int) -> None:
    die_with_parent(parent)  # elsewhere than Linux the process group's timeout bounds every collective
    log = os.open(Path(folder) / f"rank{rank}.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.environ.update(MASTER_ADDR=HOST, MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      NODE_RANK="0", WORLD_SIZE=str(world_size))
    if Path("/sys/class/net/lo").exists():
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # loopback, whatever the host name resolves to
    torch.set_num_threads(threads)
    try:
        if init:
            dist.init_process_group("gloo", init_method=f"tcp://{HOST}:{port}", rank=rank,
                                    world_size=world_size,
                                    timeout=datetime.timedelta(seconds=timeout))
        out = fn(rank, world_size, *args)
        with open(Path(folder) / f"rank{rank}.pkl", "wb") as f:
            pickle.dump(out, f)
    except BaseException:
        # When one rank fails, its peers fail moments later in their collectives ("connection
        # closed by peer"); the time stamp lets the parent name the rank that failed first.
        (Path(folder) / f"rank{rank}.failed").write_text(f"{time.time_ns()}\n{traceback.format_exc()}")
        raise
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def _first_failure(folder: Path, processes: Sequence[Any], fallback: int | None) -> tuple[int | None, str, list[int]]:
    """The rank that failed first, its traceback, and the ranks that failed after it.

    The other ranks get a few seconds to fail or finish, so that the first failure is
    told apart from its consequences whichever process the OS reports first.
    """
    deadline = time.monotonic() + 5.0
    while any(p.is_alive() for p in processes) and time.monotonic() < deadline:
        time.sleep(0.05)
    failed = []
    for path in folder.glob("rank*.failed"):
        stamp, _, trace = path.read_text(errors="replace").partition("\n")
        failed.append((int(stamp), int(path.stem[4:]), trace))
    if not failed:
        return fallback, "", []
    failed.sort()
    return failed[0][1], failed[0][2], [rank for _, rank, _ in failed[1:]]


def _reap(processes: Sequence[Any]) -> None:
    """Terminate, then kill, every process still alive; wait for each."""
    for p in processes:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + 5.0
    for p in processes:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join()


def launch(fn: Callable[..., Any], world_size: int, args: Sequence[Any] = (), *,
           timeout: float = 120.0, init: bool = True, threads: int = 1) -> list[Any]:
    """Run ``fn(rank, world_size, *args)`` in ``world_size`` fresh processes; return their results.

    ``fn`` must be importable (a module-level function) and return something picklable.
    ``timeout`` (seconds) bounds the whole launch and each collective. Raises
    ``RuntimeError`` with the failing rank's log tail if a rank fails, ``TimeoutError``
    if the deadline passes; either way no process is left running.
    """
    if not isinstance(world_size, int) or isinstance(world_size, bool) or world_size < 1:
        raise ValueError(f"world_size must be a positive int, got {world_size!r}")
    if not timeout > 0:
        raise ValueError(f"timeout must be positive (seconds), got {timeout!r}")
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive int, got {threads!r}")
    folder = Path(tempfile.mkdtemp(prefix="accel-launch-"))
    context = None
    try:
        context = mp.start_processes(
            _entry, args=(fn, world_size, free_port(), str(folder), tuple(args), init, threads,
                          float(timeout), os.getpid()),
            nprocs=world_size, join=False, start_method="spawn")
        deadline = time.monotonic() + timeout
        while True:
            try:
                if context.join(timeout=0.2):
                    break
            except Exception as err:  # a rank raised or died: name the first, with its log
                rank, trace, later = getattr(err, "error_index", None), "", []
                if not isinstance(err, mp.ProcessExitedException):  # a signal leaves no time stamp
                    rank, trace, later = _first_failure(folder, context.processes, rank)
                log = _tail(folder / f"rank{rank}.log") if rank is not None else ""
                after = f" (then rank{'s' * (len(later) > 1)} {', '.join(map(str, later))})" if later else ""
                raise RuntimeError(f"rank {rank} of {world_size} failed first{after}: "
                                   f"{trace or err}\n{log}") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"{world_size} processes did not finish within {timeout:g} s")
        results = []
        for rank in range(world_size):
            with open(folder / f"rank{rank}.pkl", "rb") as f:
                results.append(pickle.load(f))
        return results
    finally:
        if context is not None:
            _reap(context.processes)
        shutil.rmtree(folder, ignore_errors=True)
