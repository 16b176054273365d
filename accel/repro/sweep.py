"""Run one notebook over a grid of parameters: parallel, resumable, failure-isolated.

``accel sweep NOTEBOOK --grid lr=1e-3,3e-3 --grid seed=0,1,2 --out runs/lr`` executes
the notebook once per combination (papermill, via :func:`accel.runner.run_notebook`)
in worker processes. Each run lives in ``OUT/<id>/``, ``<id>`` a stable hash of the
notebook's name and the run's parameters, so rerunning the same command finds the
runs already done (their results record is complete) and skips them; ``force`` redoes
them. A run that raises leaves a failure record (``failed.json``: parameters, error,
the executed notebook with the traceback) and the others go on; a worker process that
dies (killed, out of memory) takes only the runs it and the pool had in flight with it.
Workers die with the sweep (``kill -9`` of it included) and take their kernels along
(:mod:`accel.repro.workers`); each run holds its folder's lock while it executes
(:mod:`accel.repro.locks`), so two sweeps on one folder never execute the same run at
once (the second reports it ``locked``). ``cluster``/``slurm`` send the runs to a Dask
cluster or a SLURM array job instead (:mod:`accel.repro.cluster`).
Every file is written under a temporary name and renamed, so an interrupted sweep
leaves nothing a resume would mistake for finished work. The records are collected
into one tidy table (``results.csv``: one row per run × metric, the parameters as
columns) and a seaborn figure (``summary.png``: a metric against the swept parameter,
seeds as bands).
"""
from __future__ import annotations

import json
import multiprocessing
import os
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from .grid import Run, expand, run_id
from ..atomic import write_json_atomic
from .locks import RunLocked, run_lock
from .runner import check_parameters, notebook_parameters
from .sweep_table import _write_csv, claims_table, collect, summary_figure
from .workers import init_worker, output_to, threads_per_job

DONE, FAILED, INTERRUPTED, LOCKED = "done", "failed", "interrupted", "locked"
FAILURE_RECORD = "failed.json"
PARAMS_FILE = "params.json"
RUNNING = ".running"
KERNEL_LOG = "kernel.log"
MAX_EXIT_STATUS = 100


def plan(notebook: str | os.PathLike, grid: Mapping[str, list[Any]], out: str | os.PathLike,
         profile: str = "cpu") -> list[Run]:
    """Validate the whole grid against the notebook, then list its runs; nothing executes.

    Refuses a missing notebook, an empty grid, a parameter with no values or repeated
    values, a name the notebook's ``parameters`` cell does not define (listing those
    it does) and a value whose type differs from the default's.
    """
    notebook = Path(notebook)
    defaults = notebook_parameters(notebook)  # FileNotFoundError for a missing notebook
    if not grid:
        raise ValueError("empty grid: give at least one --grid name=v1,v2 (or a --grid-file); "
                         f"parameters of {notebook.name}: {', '.join(defaults)}")
    unknown = [name for name in grid if name not in defaults]
    if unknown:
        raise ValueError(f"{notebook.name} has no parameter {', '.join(map(repr, unknown))}; "
                         f"valid parameters: {', '.join(defaults)}")
    for name, values in grid.items():
        if not values:
            raise ValueError(f"grid parameter {name!r} has no values")
        if len({json.dumps(v, sort_keys=True, default=repr) for v in values}) < len(values):
            raise ValueError(f"grid parameter {name!r} repeats a value: {values!r}")
        for value in values:
            check_parameters(notebook, {name: value}, defaults)
    floats = {n for n, p in defaults.items() if isinstance(p.default, float) or p.annotation in ("float", "float | None")}
    runs = []
    for combo in expand(grid):
        params = {"profile": profile, **combo}
        params = {n: float(v) if n in floats and isinstance(v, int) else v for n, v in params.items()}
        check_parameters(notebook, params, defaults)
        rid = run_id(notebook.stem, params)
        runs.append(Run(rid, params, Path(out) / rid))
    return runs


# ---------------------------------------------------------------- one run (in a worker)

def execute_run(notebook: str, run_dir: str, params: dict[str, Any], threads: int | None = None
                ) -> dict[str, Any]:
    """Run one combination in this (worker) process and say how it went.

    Top-level so that spawned workers can import it. The run holds its folder's lock
    (:func:`accel.repro.locks.run_lock`) throughout: a run another process is executing
    is reported as ``locked`` and left alone. The kernel's own output goes to
    ``kernel.log`` in the run's folder rather than the sweep's terminal. A failure is
    written as ``failed.json`` (atomically) and returned, never raised. ``threads``
    caps the kernel's OpenMP/MKL threads (unless the environment sets them) so that
    parallel runs share the cores instead of oversubscribing them.
    """
    from .workers import set_threads

    set_threads(threads)
    folder = Path(run_dir)
    try:
        with run_lock(folder):
            return _execute_locked(notebook, folder, params)
    except RunLocked as err:
        return {"status": LOCKED, "params": params, "error": str(err)}


def _execute_locked(notebook: str, folder: Path, params: dict[str, Any]) -> dict[str, Any]:
    from .runner import run_notebook

    stem = Path(notebook).stem
    (folder / FAILURE_RECORD).unlink(missing_ok=True)
    for stale in folder.glob(".*.partial.*"):  # left by an earlier, killed attempt
        stale.unlink(missing_ok=True)
    (folder / RUNNING).write_text(str(os.getpid()))
    start = time.perf_counter()
    try:
        with output_to(folder / KERNEL_LOG):
            run_notebook(notebook, folder, params, profile=params.get("profile", "cpu"), name=stem)
        return {"status": DONE, "seconds": time.perf_counter() - start}
    except Exception as err:  # noqa: BLE001 - isolate every failure of a run
        failed_nb = folder / f"{stem}.failed.ipynb"
        outcome = {"status": FAILED, "params": params, "error": str(err).splitlines()[0],
                   "error_type": type(err).__name__, "traceback": traceback.format_exc(),
                   "failed_notebook": str(failed_nb) if failed_nb.exists() else None,
                   "kernel_log": str(folder / KERNEL_LOG), "seconds": time.perf_counter() - start}
        write_json_atomic(folder / FAILURE_RECORD, outcome)
        return outcome
    finally:
        (folder / RUNNING).unlink(missing_ok=True)


# ---------------------------------------------------------------- the sweep

@dataclass
class SweepResult:
    """What a sweep did: every run's status, and where the table and figure are."""
    out: Path
    runs: list[Run]
    status: dict[str, dict[str, Any]]
    table: pd.DataFrame
    table_path: Path | None = None
    figure_path: Path | None = None
    skipped: int = 0
    notes: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for s in self.status.values() if s["status"] == status)

    @property
    def exit_status(self) -> int:
        """How many runs did not finish (failed, interrupted or busy elsewhere), capped at 100."""
        return min(self.count(FAILED) + self.count(INTERRUPTED) + self.count(LOCKED), MAX_EXIT_STATUS)


def sweep(notebook: str | os.PathLike, grid: Mapping[str, list[Any]], out: str | os.PathLike, *,
          profile: str = "cpu", workers: int = 1, force: bool = False, metric: str | None = None,
          progress: bool | None = None, figure: bool = True, cluster: str | Any = None,
          slurm: Mapping[str, Any] | None = None) -> SweepResult:
    """Execute ``notebook`` for every combination of ``grid`` into ``out``; see the module doc.

    ``progress=None`` shows the bar only on a terminal; ``figure=False`` skips the plot.
    ``cluster="dask://HOST:PORT"`` runs each combination as a task of that Dask scheduler,
    ``slurm`` (submitit parameters, from :func:`accel.repro.cluster.check_slurm_options`)
    as one SLURM array job; see :mod:`accel.repro.cluster`.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a whole number of at least 1, got {workers!r}")
    if cluster is not None and slurm is not None:
        raise ValueError("give a Dask cluster or a SLURM partition, not both")
    if isinstance(cluster, str):  # (a test may pass a distributed.Client instead)
        from .cluster import parse_dask_address
        parse_dask_address(cluster)
    notebook = Path(notebook)
    runs = plan(notebook, grid, out, profile)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = notebook.stem
    status: dict[str, dict[str, Any]] = {}
    todo = []
    for run in runs:
        if not force and run.is_complete(stem):
            status[run.id] = {"status": DONE, "resumed": True}
        else:
            run.dir.mkdir(parents=True, exist_ok=True)
            (run.dir / RUNNING).unlink(missing_ok=True)
            write_json_atomic(run.dir / PARAMS_FILE, run.params)
            todo.append(run)
    skipped = len(runs) - len(todo)
    bar = _progress(len(runs), skipped, progress)
    try:
        if todo and (cluster is not None or slurm is not None):
            from . import cluster as engines

            def report(counts: dict[str, int]) -> None:
                _update(bar, status, counts)

            if cluster is not None:
                engines.run_on_dask(notebook, todo, cluster if isinstance(cluster, str) else "", status, report,
                                    out, client=None if isinstance(cluster, str) else cluster)
            else:
                engines.run_on_slurm(notebook, todo, slurm, status, report, out)
            _update(bar, status)
        else:
            _execute_all(notebook, todo, workers, status, bar)
    finally:
        bar.close()
        table = collect(runs, stem, list(grid))
        result = SweepResult(out, runs, status, table, skipped=skipped)
        _write_outputs(result, notebook, grid, profile, metric, figure)
    return result


def _execute_all(notebook: Path, todo: list[Run], workers: int, status: dict[str, dict[str, Any]],
                 bar: Any) -> None:
    """Run ``todo`` in a pool; after a worker dies, go on in a fresh pool with the unstarted runs."""
    pending = list(todo)
    context = multiprocessing.get_context("spawn")
    threads = threads_per_job(workers) if workers > 1 else None
    while pending:
        # each worker dies with this process, and its kernels with it (accel.repro.workers)
        pool = ProcessPoolExecutor(max_workers=min(workers, len(pending)), mp_context=context,
                                   initializer=init_worker, initargs=(os.getpid(), threads))
        futures: dict[Future, Run] = {
            pool.submit(execute_run, str(notebook), str(r.dir), r.params): r for r in pending}
        broken = False
        try:
            remaining = set(futures)
            while remaining:
                finished, remaining = wait(remaining, return_when=FIRST_COMPLETED)
                for fut in finished:
                    try:
                        status[futures[fut].id] = fut.result()
                    except BrokenProcessPool:
                        broken = True
                        continue
                    _update(bar, status)
        except BaseException:  # Ctrl-C: drop what has not started; finished runs are on disk
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        if not broken:
            return
        leftover = [r for r in pending if r.id not in status]
        started = [r for r in leftover if (r.dir / RUNNING).exists()]
        for run in started or leftover:  # no run had started: the pool itself died, stop here
            status[run.id] = _interrupted(run)
        _update(bar, status)
        pending = [r for r in leftover if r.id not in status]


def _interrupted(run: Run) -> dict[str, Any]:
    (run.dir / RUNNING).unlink(missing_ok=True)
    outcome = {"status": INTERRUPTED, "params": run.params,
               "error": "the worker process running it died (killed or out of memory); "
                        "rerun the same sweep to resume",
               "failed_notebook": None, "kernel_log": str(run.dir / KERNEL_LOG)}
    write_json_atomic(run.dir / FAILURE_RECORD, outcome)
    return outcome


def _progress(total: int, skipped: int, enabled: bool | None) -> Any:
    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=skipped, unit="run", desc="sweep",
               disable=None if enabled is None else not enabled)
    bar.set_postfix({"finished": skipped, "failed": 0, "remaining": total - skipped})
    return bar


def _update(bar: Any, status: dict[str, dict[str, Any]], cluster: Mapping[str, int] | None = None) -> None:
    """Finished (done), failed (failed or interrupted) and remaining runs; on a cluster, the
    remaining ones split into running and queued."""
    failed = sum(1 for s in status.values() if s["status"] != DONE)
    done = len(status) - failed
    bar.n = len(status)
    left = {"running": cluster.get("running", 0), "queued": cluster.get("queued", 0)} if cluster else \
        {"remaining": bar.total - len(status)}
    bar.set_postfix({"finished": done, "failed": failed, **left})


def _write_outputs(result: SweepResult, notebook: Path, grid: Mapping[str, list[Any]], profile: str,
                   metric: str | None, figure: bool = True) -> None:
    """The tidy tables, the summary figure and ``sweep.json`` (each written atomically)."""
    out, stem = result.out, notebook.stem
    result.table_path = _write_csv(result.table, out / "results.csv")
    _write_csv(claims_table(result.runs, stem, list(grid)), out / "claims.csv")
    if figure and not result.table.empty:
        chosen = metric or result.table["metric"].iloc[0]
        try:
            result.figure_path = summary_figure(result.table, chosen, list(grid), out / "summary.png",
                                                notebook=stem)
        except ValueError as err:
            result.notes.append(f"no figure: {err}")
    runs = []
    for run in result.runs:
        s = result.status.get(run.id, {"status": "not run"})
        runs.append({"id": run.id, "dir": str(run.dir), "params": run.params, "status": s["status"],
                     **{k: s[k] for k in ("error", "failed_notebook", "seconds", "resumed") if k in s}})
    write_json_atomic(out / "sweep.json", {
        "notebook": str(notebook), "profile": profile, "grid": dict(grid),
        "counts": {k: result.count(k) for k in (DONE, FAILED, INTERRUPTED, LOCKED)}, "runs": runs})
