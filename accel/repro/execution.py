"""Execute several chapters at once: worker processes, longest first, failures isolated.

``accel book --jobs N`` hands the chapters the cache could not serve to N worker
processes (spawned; each dies with the build, see :mod:`accel.repro.workers`), each
kernel capped at ``cores // N`` threads so that parallel chapters share the cores. The
chapters are submitted longest first, by their last recorded wall times, so the
longest one does not start last. A chapter that fails is reported with its name and
cell (papermill's error) while the others run on; the caller caches every success.
With one job the chapters run in this process, one after the other, as before.
"""
from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .workers import init_worker, output_to, threads_per_job


@dataclass
class Job:
    """One chapter to execute: papermill's input, parameters and output folder."""
    name: str
    notebook: Path
    out_dir: Path
    params: dict[str, Any] = field(default_factory=dict)
    profile: str = "cpu"
    expected: float | None = None  # last recorded wall time, seconds
    log: Path | None = None  # where the kernel's own output (warnings, stderr) goes


@dataclass
class Outcome:
    job: Job
    seconds: float
    executed: Path | None = None
    results: Path | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def longest_first(jobs: list[Job]) -> list[Job]:
    """Unknown durations first (they may be long), then by last wall time, longest first."""
    return sorted(jobs, key=lambda j: (j.expected is not None, -(j.expected or 0.0)))


def execute_one(notebook: str, out_dir: str, params: dict[str, Any], profile: str, log: str | None = None
                ) -> tuple[float, str | None, str | None, str | None]:
    """Run one chapter (in a worker); never raises: (seconds, executed, record, error)."""
    from .runner import NotebookError, run_notebook

    start = time.perf_counter()
    try:
        if log:
            Path(log).parent.mkdir(parents=True, exist_ok=True)
        with output_to(Path(log) if log else None):
            out = run_notebook(notebook, out_dir, params, profile=profile)
    except (NotebookError, ValueError, FileNotFoundError, OSError) as err:
        return time.perf_counter() - start, None, None, str(err)
    return out.seconds, str(out.executed), str(out.results), None


def execute(jobs: list[Job], workers: int = 1, *, on_start: Callable[[Job], None] | None = None,
            on_done: Callable[[Outcome], None] | None = None, cluster: Any = None) -> list[Outcome]:
    """Execute ``jobs`` on ``workers`` processes; ``on_done`` sees each outcome as it arrives.

    ``cluster`` (``dask://HOST:PORT`` or a ``distributed.Client``) sends each chapter to a
    Dask worker instead (see :mod:`accel.repro.cluster`; the build folder must be shared).
    """
    if workers < 1:
        raise ValueError(f"jobs must be at least 1, got {workers}")
    order = longest_first(jobs)
    outcomes: list[Outcome] = []

    def finish(job: Job, result: tuple[float, str | None, str | None, str | None]) -> None:
        seconds, executed, record, error = result
        outcome = Outcome(job, seconds, Path(executed) if executed else None,
                          Path(record) if record else None, error)
        outcomes.append(outcome)
        if on_done:
            on_done(outcome)

    if cluster is not None and order:
        _on_dask(order, cluster, on_start, finish)
        return outcomes
    if workers == 1 or len(order) <= 1:
        for job in order:
            if on_start:
                on_start(job)
            finish(job, execute_one(str(job.notebook), str(job.out_dir), job.params, job.profile,
                                    _str(job.log)))
        return outcomes

    n = min(workers, len(order))
    pool = ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn"),
                               initializer=init_worker, initargs=(os.getpid(), threads_per_job(n)))
    futures: dict[Future, Job] = {}
    try:
        for job in order:
            futures[pool.submit(execute_one, str(job.notebook), str(job.out_dir), job.params,
                                job.profile, _str(job.log))] = job
        started: set[Future] = set()
        remaining = set(futures)
        while remaining:
            for fut, job in futures.items():  # the pool runs them in submission order
                if fut not in started and (fut.running() or fut.done()) and on_start:
                    started.add(fut)
                    on_start(job)
            done, remaining = wait(remaining, timeout=0.5, return_when=FIRST_COMPLETED)
            for fut in done:
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    result = (0.0, None, None, "the worker process running it died "
                              "(killed or out of memory); rerun to execute it")
                finish(futures[fut], result)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return outcomes


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _on_dask(order: list[Job], cluster: Any, on_start: Callable[[Job], None] | None,
             finish: Callable[[Job, tuple[float, str | None, str | None, str | None]], None]) -> None:
    """Submit each chapter as one Dask task, longest first (Dask runs them in submission order)."""
    from .cluster import _require, check_shared_folder, parse_dask_address

    distributed = _require("distributed")
    client = distributed.Client(parse_dask_address(cluster), timeout="20s") if isinstance(cluster, str) else cluster
    try:
        order[0].out_dir.mkdir(parents=True, exist_ok=True)
        check_shared_folder(client, order[0].out_dir)
        futures = {client.submit(execute_one, str(job.notebook.resolve()), str(job.out_dir.resolve()), job.params,
                                 job.profile, _str(job.log), key=f"accel-chapter-{job.name}-{os.getpid()}",
                                 pure=False): job for job in order}
        for job in order:
            if on_start:
                on_start(job)
        for fut in distributed.as_completed(futures):
            try:
                result = fut.result()
            except Exception as err:  # noqa: BLE001 - a lost worker, after Dask's own retries
                result = (0.0, None, None, f"the Dask cluster lost this chapter: {type(err).__name__}: {err}")
            finish(futures[fut], result)
    finally:
        if isinstance(cluster, str):
            client.close()
