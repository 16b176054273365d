"""Sweeps beyond one machine: a Dask distributed cluster, or SLURM through submitit.

Both engines run the very function the local worker processes run,
:func:`accel.repro.sweep.execute_run`, one task (Dask) or one array element (SLURM)
per run, so the guarantees of a local sweep hold unchanged:

- a run is executed at most once at a time: it holds its folder's lock
  (:mod:`accel.repro.locks`), so a retry or a second sweep that reaches a busy run
  reports it ``locked`` instead of racing it;
- a finished run is never redone (the sweep skips complete records before submitting);
- a failing run writes its ``failed.json`` and returns; the others go on;
- a worker that dies mid-run leaves only partial files (records get their final name
  last); Dask reschedules the task on another worker (``distributed``'s own recovery of
  lost tasks), and for SLURM a job that ended without a result is resubmitted, up to
  ``retries`` times; either way each run ends with exactly one complete record.

The output folder must be visible to the workers at the same path (a shared
filesystem). For Dask this is checked before anything is submitted: every worker
writes a probe file there, which this process must then see. Workers must run one task
at a time (``dask worker --nthreads 1``, or ``LocalCluster(threads_per_worker=1)``):
a run redirects its process's output and sets its record path in the environment.

``dask``, ``distributed`` and ``submitit`` are optional (``pip install -e .[cluster]``);
nothing here imports them until a cluster is asked for.
"""
from __future__ import annotations

import os
import re
import socket
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Mapping

from .grid import Run

DASK_SCHEME = re.compile(r"^dask://(?P<host>[^:/\s]+):(?P<port>\d{1,5})$")
SUBMITIT_ENV = "ACCEL_SUBMITIT_CLUSTER"  # "local": submitit's local executor (tests, trying it out)
INSTALL_HINT = "install the optional extras: pip install -c constraints.txt -e '.[cluster]'"


def parse_dask_address(address: str) -> str:
    """``dask://HOST:PORT`` -> the scheduler address ``tcp://HOST:PORT`` (a clear error otherwise)."""
    m = DASK_SCHEME.match(address or "")
    if not m or not 0 < int(m.group("port")) < 65536:
        raise ValueError(f"--cluster expects dask://HOST:PORT (a Dask scheduler), got {address!r}")
    return f"tcp://{m.group('host')}:{m.group('port')}"


def check_slurm_options(partition: str | None, gpus: int | None, minutes: int | None) -> dict[str, Any]:
    """The ``--slurm`` options as submitit parameters, each checked before anything is submitted."""
    if not partition or not re.fullmatch(r"[A-Za-z0-9_.,-]+", partition):
        raise ValueError(f"--slurm expects a partition name (letters, digits, _ . , -), got {partition!r}")
    if gpus is not None and not (isinstance(gpus, int) and 0 <= gpus <= 64):
        raise ValueError(f"--slurm-gpus must be a whole number in [0, 64], got {gpus!r}")
    if minutes is not None and not (isinstance(minutes, int) and 1 <= minutes <= 60 * 24 * 14):
        raise ValueError(f"--slurm-time must be minutes in [1, 20160], got {minutes!r}")
    return {"slurm_partition": partition, "gpus_per_node": gpus or 0, "timeout_min": minutes or 60}


def _require(module: str) -> Any:
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ValueError(f"this needs the Python package {module!r}; {INSTALL_HINT}") from None


# ---------------------------------------------------------------- Dask

def _probe(folder: str, token: str) -> str:
    """On a worker: write a probe file into the output folder; return where it was written or why not."""
    path = Path(folder) / f".probe-{token}-{os.getpid()}"
    try:
        path.write_text(socket.gethostname())
    except OSError as err:
        return f"error: {err}"
    return str(path)


def check_shared_folder(client: Any, out: Path) -> None:
    """Every worker can write into ``out`` and this process sees what they wrote (a shared filesystem)."""
    token = uuid.uuid4().hex[:8]
    answers = client.run(_probe, str(out.resolve()), token)
    problems = []
    for worker, answer in answers.items():
        if answer.startswith("error: "):
            problems.append(f"{worker} cannot write there ({answer[7:]})")
        elif not Path(answer).exists():
            problems.append(f"{worker} wrote {answer}, which this machine cannot see")
        else:
            Path(answer).unlink(missing_ok=True)
    if not answers:
        raise ValueError("the Dask cluster has no workers; start some (dask worker ADDRESS --nthreads 1)")
    if problems:
        raise ValueError(f"the output folder {out} must be on a filesystem shared with every Dask worker, "
                         f"at the same path: " + "; ".join(problems))


def run_on_dask(notebook: Path, todo: list[Run], address: str, status: dict[str, dict[str, Any]],
                report: Callable[[dict[str, int]], None], out: Path, client: Any = None) -> None:
    """Submit each run as one Dask task; fill ``status`` as they finish."""
    distributed = _require("distributed")
    from .sweep import execute_run

    own = client is None
    if own:
        try:
            client = distributed.Client(parse_dask_address(address), timeout="20s")
        except OSError as err:
            raise ValueError(f"no Dask scheduler answers at {address}: {err}") from None
    try:
        busy = {w: n for w, n in client.nthreads().items() if n != 1}
        if busy:
            raise ValueError("Dask workers must run one task at a time (start them with --nthreads 1); "
                             f"these have more threads: {busy}")
        check_shared_folder(client, out)
        futures = {client.submit(execute_run, str(notebook.resolve()), str(r.dir.resolve()), r.params,
                                 key=f"accel-run-{r.id}-{uuid.uuid4().hex[:6]}", pure=False): r for r in todo}
        pending = set(futures)
        while pending:
            try:
                done, pending = distributed.wait(pending, timeout=1.0, return_when="FIRST_COMPLETED")
            except TimeoutError:  # nothing finished in this second: refresh the progress line
                done = set()
            for fut in done:
                run = futures[fut]
                try:
                    status[run.id] = fut.result()
                except Exception as err:  # noqa: BLE001 - e.g. KilledWorker after repeated deaths
                    status[run.id] = _lost(run, f"{type(err).__name__}: {err}")
            processing = sum(len(v) for v in client.processing().values())
            report({"running": min(processing, len(pending)), "queued": max(0, len(pending) - processing)})
    finally:
        if own:
            client.close()


# ---------------------------------------------------------------- SLURM (submitit)

def slurm_executor(folder: Path, options: Mapping[str, Any], jobs: int) -> Any:
    """submitit's executor for the sweep (``$ACCEL_SUBMITIT_CLUSTER=local`` for its local executor)."""
    submitit = _require("submitit")
    cluster = os.environ.get(SUBMITIT_ENV) or "slurm"
    if cluster not in ("slurm", "local", "debug"):
        raise ValueError(f"${SUBMITIT_ENV} must be slurm, local or debug, got {cluster!r}")
    executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    params = dict(options)
    if cluster != "slurm":
        params.pop("slurm_partition", None)
    executor.update_parameters(name="accel-sweep", slurm_array_parallelism=jobs, nodes=1, tasks_per_node=1,
                               cpus_per_task=1, **params)
    return executor


def run_on_slurm(notebook: Path, todo: list[Run], options: Mapping[str, Any], status: dict[str, dict[str, Any]],
                 report: Callable[[dict[str, int]], None], out: Path, retries: int = 2,
                 poll: float = 1.0) -> None:
    """One array job per sweep (``executor.batch()``); a job that ends without a result is resubmitted."""
    from .sweep import execute_run

    executor = slurm_executor(out / ".submitit", options, max(1, len(todo)))
    attempts = {r.id: 0 for r in todo}
    waiting = list(todo)
    while waiting:
        with executor.batch():
            jobs = [(r, executor.submit(execute_run, str(notebook.resolve()), str(r.dir.resolve()), r.params))
                    for r in waiting]
        for r in waiting:
            attempts[r.id] += 1
        waiting = []
        live = list(jobs)
        while live:
            still = []
            for run, job in live:
                if not job.done():
                    still.append((run, job))
                    continue
                try:
                    status[run.id] = job.result()
                except Exception as err:  # noqa: BLE001 - the job died: resubmit, or record it lost
                    if attempts[run.id] <= retries and not run.is_complete(notebook.stem):
                        waiting.append(run)
                    else:
                        status[run.id] = _lost(run, f"{type(err).__name__}: {str(err).splitlines()[0]}")
            live = still
            states = [job.state for _, job in live]
            report({"running": sum(s == "RUNNING" for s in states),
                    "queued": sum(s != "RUNNING" for s in states) + len(waiting)})
            if live:
                time.sleep(poll)


def _lost(run: Run, why: str) -> dict[str, Any]:
    from .sweep import INTERRUPTED, _interrupted
    from ..atomic import write_json_atomic
    from .sweep import FAILURE_RECORD
    outcome = _interrupted(run)
    outcome.update(status=INTERRUPTED, error=f"the cluster lost this run ({why}); rerun the same sweep to resume")
    write_json_atomic(run.dir / FAILURE_RECORD, outcome)
    return outcome
