"""Run one notebook over a grid of parameters: parallel, resumable, failure-isolated.

``accel sweep NOTEBOOK --grid lr=1e-3,3e-3 --grid seed=0,1,2 --out runs/lr`` executes
the notebook once per combination (papermill, via :func:`accel.runner.run_notebook`)
in worker processes. Each run lives in ``OUT/<id>/``, ``<id>`` a stable hash of the
notebook's name and the run's parameters, so rerunning the same command finds the
runs already done (their results record is complete) and skips them; ``force`` redoes
them. A run that raises leaves a failure record (``failed.json``: parameters, error,
the executed notebook with the traceback) and the others go on; a worker process that
dies (killed, out of memory) takes only the runs it and the pool had in flight with it.
Every file is written under a temporary name and renamed, so an interrupted sweep
leaves nothing a resume would mistake for finished work. The records are collected
into one tidy table (``results.csv``: one row per run × metric, the parameters as
columns) and a seaborn figure (``summary.png``: a metric against the swept parameter,
seeds as bands).
"""
from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing
import os
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from .results import load, write_json_atomic
from .runner import check_parameters, notebook_parameters, parse_value

DONE, FAILED, INTERRUPTED = "done", "failed", "interrupted"
FAILURE_RECORD = "failed.json"
PARAMS_FILE = "params.json"
RUNNING = ".running"
KERNEL_LOG = "kernel.log"
MAX_EXIT_STATUS = 100
_SEED_NAMES = ("seed",)


# ---------------------------------------------------------------- the grid

def split_values(text: str) -> list[str]:
    """Split ``v1,v2,...`` on commas outside brackets and quotes (``[1, 2],[3]`` is two values)."""
    parts, depth, quote, current = [], 0, "", []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def parse_grid(items: Sequence[str] | None) -> dict[str, list[Any]]:
    """``["lr=1e-3,3e-3", "seed=0,1"]`` -> ``{"lr": [0.001, 0.003], "seed": [0, 1]}``."""
    grid: dict[str, list[Any]] = {}
    for item in items or []:
        name, sep, values = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"grid entry {item!r} is not of the form name=v1,v2,...")
        if name in grid:
            raise ValueError(f"grid parameter {name!r} is given twice; list all its values once")
        grid[name] = [parse_value(v) for v in split_values(values)]
    return grid


def load_grid_file(path: str | os.PathLike) -> dict[str, list[Any]]:
    """A YAML mapping ``name: [values]`` (a scalar is one value).

    Strings are read like command-line values, so ``1e-3`` (a string to YAML 1.1)
    becomes the float 0.001, exactly as ``--grid lr=1e-3`` would.
    """
    import yaml

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no grid file at {path}")
    data = yaml.safe_load(path.read_text())
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"grid file {path} must be a mapping name: [values], got {type(data).__name__}")
    grid = {}
    for name, values in data.items():
        values = values if isinstance(values, list) else [values]
        grid[str(name)] = [parse_value(v) if isinstance(v, str) else v for v in values]
    return grid


def merge_grids(*grids: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
    """Later grids override earlier ones name by name (``--grid`` over ``--grid-file``)."""
    merged: dict[str, list[Any]] = {}
    for g in grids:
        merged.update(g)
    return merged


def expand(grid: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, the first parameter varying slowest."""
    names = list(grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*(grid[n] for n in names))]


def run_id(notebook: str, params: Mapping[str, Any]) -> str:
    """A stable name for one run: a hash of the notebook's name and its parameters."""
    text = json.dumps({"notebook": notebook, "params": dict(params)}, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass
class Run:
    """One combination of the grid: its parameters and where its outputs go."""
    id: str
    params: dict[str, Any]
    dir: Path

    def record_path(self, stem: str) -> Path:
        return self.dir / f"{stem}.json"

    def is_complete(self, stem: str) -> bool:
        """Done means: a complete results record and the executed notebook next to it."""
        if not (self.dir / f"{stem}.ipynb").exists():
            return False
        try:
            load(self.record_path(stem))
        except (OSError, ValueError):
            return False
        return True


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
    floats = {n for n, d in defaults.items() if isinstance(d, float)}
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

    Top-level so that spawned workers can import it. The kernel's own output goes to
    ``kernel.log`` in the run's folder rather than the sweep's terminal. A failure is
    written as ``failed.json`` (atomically) and returned, never raised. ``threads``
    caps the kernel's OpenMP/MKL threads (unless the environment sets them) so that
    parallel runs share the cores instead of oversubscribing them.
    """
    from .runner import run_notebook

    if threads:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, str(threads))

    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stem = Path(notebook).stem
    (folder / FAILURE_RECORD).unlink(missing_ok=True)
    for stale in folder.glob(".*.partial.*"):  # left by an earlier, killed attempt
        stale.unlink(missing_ok=True)
    (folder / RUNNING).write_text(str(os.getpid()))
    start = time.perf_counter()
    try:
        with _output_to(folder / KERNEL_LOG):
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


class _output_to:
    """Send this process's file descriptors 1 and 2 (inherited by the kernel) to a file."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> None:
        self.saved = [os.dup(1), os.dup(2)]
        self.file = open(self.path, "ab")
        for fd in (1, 2):
            os.dup2(self.file.fileno(), fd)

    def __exit__(self, *exc: Any) -> None:
        for fd, saved in zip((1, 2), self.saved):
            os.dup2(saved, fd)
            os.close(saved)
        self.file.close()


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
        """How many runs did not finish (failed or interrupted), capped at 100."""
        return min(self.count(FAILED) + self.count(INTERRUPTED), MAX_EXIT_STATUS)


def sweep(notebook: str | os.PathLike, grid: Mapping[str, list[Any]], out: str | os.PathLike, *,
          profile: str = "cpu", workers: int = 1, force: bool = False, metric: str | None = None,
          progress: bool | None = None, figure: bool = True) -> SweepResult:
    """Execute ``notebook`` for every combination of ``grid`` into ``out``; see the module doc.

    ``progress=None`` shows the bar only on a terminal; ``figure=False`` skips the plot.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
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
    threads = max(1, (os.cpu_count() or 1) // workers) if workers > 1 else None
    while pending:
        pool = ProcessPoolExecutor(max_workers=min(workers, len(pending)), mp_context=context)
        futures: dict[Future, Run] = {
            pool.submit(execute_run, str(notebook), str(r.dir), r.params, threads): r for r in pending}
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


def _update(bar: Any, status: dict[str, dict[str, Any]]) -> None:
    """Finished (done), failed (failed or interrupted) and remaining runs."""
    failed = sum(1 for s in status.values() if s["status"] != DONE)
    done = len(status) - failed
    bar.n = len(status)
    bar.set_postfix({"finished": done, "failed": failed, "remaining": bar.total - len(status)})


# ---------------------------------------------------------------- the table and figure

def collect(runs: Iterable[Run], stem: str, swept: Sequence[str]) -> pd.DataFrame:
    """One row per finished run × numeric metric: run id, the parameters, metric, value.

    Nested metric dicts are flattened to dotted names; non-numeric metrics (lists,
    strings) are left out of the tidy table (they stay in each run's record).
    """
    rows = []
    names = list(dict.fromkeys(["profile", *swept]))
    for run in runs:
        if not run.is_complete(stem):
            continue
        record = load(run.record_path(stem))
        params = {n: _cell(run.params.get(n)) for n in names}
        for name, value in _flatten(record.get("metrics", {})):
            rows.append({"run": run.id, **params, "metric": name, "value": float(value)})
    return pd.DataFrame(rows, columns=["run", *names, "metric", "value"])


def claims_table(runs: Iterable[Run], stem: str, swept: Sequence[str]) -> pd.DataFrame:
    """One row per finished run × claim, with the verdict and the measured value."""
    rows = []
    names = list(dict.fromkeys(["profile", *swept]))
    for run in runs:
        if run.is_complete(stem):
            for c in load(run.record_path(stem)).get("claims", []):
                rows.append({"run": run.id, **{n: _cell(run.params.get(n)) for n in names},
                             "claim": c["id"], "measured": c["measured"], "criterion": c["criterion"],
                             "verdict": c["verdict"]})
    return pd.DataFrame(rows, columns=["run", *names, "claim", "measured", "criterion", "verdict"])


def _flatten(metrics: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, float]]:
    for name, value in metrics.items():
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{prefix}{name}.")
        elif isinstance(value, (int, float)):
            yield f"{prefix}{name}", value


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def summary_figure(table: pd.DataFrame, metric: str, swept: Sequence[str], path: str | os.PathLike,
                   notebook: str = "") -> Path:
    """``metric`` against the first swept non-seed parameter, other parameters as hue.

    Seeds are aggregated: the line is the mean over seeds, the band ±1 standard
    deviation (no band where a point has one seed).
    """
    import seaborn as sns
    from matplotlib.figure import Figure

    available = sorted(table["metric"].unique())
    if metric not in available:
        raise ValueError(f"no metric {metric!r} in the sweep's records; available: {', '.join(available)}")
    data = table[table["metric"] == metric].copy()
    varied = [n for n in swept if n in data and data[n].nunique() > 1]
    others = [n for n in varied if n not in _SEED_NAMES]
    x = others[0] if others else (varied[0] if varied else swept[0])
    hue_cols = [n for n in others if n != x]
    hue = None
    if hue_cols:
        data["setting"] = data[hue_cols].astype(str).agg(", ".join, axis=1) if len(hue_cols) > 1 \
            else data[hue_cols[0]].astype(str)
        hue = "setting"
    seeds = [n for n in varied if n in _SEED_NAMES and n != x]
    n_seeds = data[seeds[0]].nunique() if seeds else 1
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot()
    numeric = pd.api.types.is_numeric_dtype(data[x]) and not pd.api.types.is_bool_dtype(data[x])
    if x in _SEED_NAMES:  # only seeds vary: each seed a point, the mean a line, ±1 sd a band
        n_seeds, mean, sd = data[x].nunique(), data["value"].mean(), data["value"].std()
        sns.scatterplot(data, x=x, y="value", hue=hue, ax=ax)
        ax.axhline(mean, color="C0", lw=1)
        if n_seeds > 1:
            ax.axhspan(mean - sd, mean + sd, color="C0", alpha=0.15)
        ax.xaxis.get_major_locator().set_params(integer=True)
    elif numeric:
        sns.lineplot(data, x=x, y="value", hue=hue, errorbar="sd", marker="o", ax=ax)
        values = data[x].astype(float)
        if (values > 0).all() and values.max() / values.min() >= 10:
            ax.set_xscale("log")
    else:
        sns.pointplot(data, x=x, y="value", hue=hue, errorbar="sd", ax=ax)
    band = f"mean over {n_seeds} seeds, band ±1 sd" if n_seeds > 1 else "one seed per point"
    head = f"{notebook}: " if notebook else ""
    ax.set(xlabel=x, ylabel=metric, title=f"{head}{metric} against {x}\n({band})")
    if hue:
        ax.legend(title=", ".join(hue_cols), fontsize=8)
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=120)
    os.replace(tmp, path)
    return path


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
        "counts": {k: result.count(k) for k in (DONE, FAILED, INTERRUPTED)}, "runs": runs})


def _write_csv(table: pd.DataFrame, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    table.to_csv(tmp, index=False)
    os.replace(tmp, path)
    return path
