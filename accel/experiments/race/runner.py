"""Running trials: cached in an output folder (a rerun resumes), failure-isolated, optionally parallel.

Each trial is a :class:`TrialTask` (workload, variant, configuration, seed, budget, target)
whose ``id`` hashes all of it together with the workload's definition, so a changed recipe,
target or workload never reuses a stale result. A finished trial is ``<folder>/trial.json``,
written atomically (:mod:`accel.atomic`); a rerun finds it and skips the trial. A trial that
raises leaves ``failed.json`` (error and traceback) and counts as a miss; the others go on.
With ``workers > 1`` trials run in spawned worker processes sharing the cores; a worker
that dies takes only its own trial with it (reported ``interrupted``, retried on a rerun).
Every trial uses :data:`TRIAL_THREADS` (one) torch thread, in this process or in a worker:
the workloads' models are small enough that more threads only add synchronization, a
machine shared with other jobs makes multi-threaded steps many times slower, and the same
thread count everywhere keeps ``--workers 1`` and ``--workers 2`` bit-identical.

This mirrors :mod:`accel.repro.sweep` (which runs notebooks, not functions); the layers'
import rule (tests/test_architecture.py) keeps the experiments layer from importing it.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ...atomic import write_json_atomic
from ...lifetime import die_with_parent
from .workloads import get_workload

DONE, FAILED, INTERRUPTED = "done", "failed", "interrupted"
RECORD, FAILURE = "trial.json", "failed.json"
TRIAL_THREADS = 1
FORMAT = 1  # bump when a trial's meaning changes, so old caches are not reused


@dataclass(frozen=True)
class TrialTask:
    workload: str
    variant: str
    config: dict[str, Any]
    seed: int
    budget: int
    target: float | None
    folder: str
    labels: dict[str, Any]  # study, trial, recipe ...: carried into the record, not hashed

    @property
    def id(self) -> str:
        key = {"format": FORMAT, "workload": self.workload, "definition": get_workload(self.workload).fingerprint(),
               "variant": self.variant, "config": self.config, "seed": self.seed, "budget": self.budget,
               "target": self.target}
        return hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cached(task: TrialTask) -> dict[str, Any] | None:
    """The finished record of ``task`` in its folder, if it is there and is this very task."""
    path = Path(task.folder) / RECORD
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if record.get("id") == task.id and record.get("status") == DONE else None


def run_task(task: TrialTask, threads: int = TRIAL_THREADS) -> dict[str, Any]:
    """Run one trial in this process, write its record (or its failure) and return it; never raises."""
    from .trial import run_trial

    folder = Path(task.folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / FAILURE).unlink(missing_ok=True)
    base = {"id": task.id, **{k: v for k, v in asdict(task).items() if k != "folder"}}
    try:
        out = run_trial(get_workload(task.workload), task.variant, task.config, seed=task.seed,
                        budget=task.budget, target=task.target, threads=threads)
    except Exception as err:  # noqa: BLE001 - isolate every failure of a trial
        record = {**base, "status": FAILED, "error": f"{type(err).__name__}: {err}".splitlines()[0],
                  "traceback": traceback.format_exc(), "history": []}
        write_json_atomic(folder / FAILURE, record)
        return record
    record = {**base, "status": DONE, **out}
    write_json_atomic(folder / RECORD, record)
    return record


def _init(threads: int, parent: int) -> None:
    die_with_parent(parent)  # a killed race (kernel, `accel race`) leaves no worker behind
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))


def execute(tasks: Sequence[TrialTask], *, workers: int = 1, force: bool = False,
            progress: Callable[[int, int], None] | None = None) -> tuple[list[dict[str, Any]], int]:
    """Every task's record (cached or run), in the order given, and how many came from the cache."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    records: dict[int, dict[str, Any]] = {}
    for i, task in enumerate(tasks):
        hit = None if force else cached(task)
        if hit is not None:
            records[i] = {**hit, "resumed": True}
    skipped = len(records)
    todo = [i for i in range(len(tasks)) if i not in records]
    done = skipped

    def finished(i: int, record: dict[str, Any]) -> None:
        nonlocal done
        records[i] = record
        done += 1
        if progress:
            progress(done, len(tasks))

    if workers == 1 or len(todo) <= 1:
        for i in todo:
            finished(i, run_task(tasks[i]))
    else:
        _run_pool(tasks, todo, workers, finished)
    return [records[i] for i in range(len(tasks))], skipped


def _run_pool(tasks: Sequence[TrialTask], todo: list[int], workers: int,
              finished: Callable[[int, dict[str, Any]], None]) -> None:
    threads = TRIAL_THREADS
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=context, initializer=_init,
                               initargs=(threads, os.getpid()))
    futures = {pool.submit(run_task, tasks[i], threads): i for i in todo}
    try:
        remaining = set(futures)
        while remaining:
            ready, remaining = wait(remaining, return_when=FIRST_COMPLETED)
            for fut in ready:
                i = futures[fut]
                try:
                    finished(i, fut.result())
                except BrokenProcessPool:
                    base = {"id": tasks[i].id, **{k: v for k, v in asdict(tasks[i]).items() if k != "folder"}}
                    finished(i, {**base, "status": INTERRUPTED, "history": [],
                                 "error": "the worker process died (killed or out of memory); rerun to resume"})
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
