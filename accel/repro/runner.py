"""Execute notebooks with papermill: parameters checked first, outputs written atomically.

papermill by itself injects any parameter it is given, so a typo (``-p sed 3``) would
silently run the defaults; :func:`check_parameters` refuses names the notebook's
``parameters`` cell does not define, before a kernel starts.
"""
from __future__ import annotations

import ast
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .notebook import parameters_cell, read_notebook
from .parameters import Parameter, effective_values, parse_parameters, profile_table, with_profiles
from .profiles import check_profile
from .results import RESULTS_ENV

TRANSPORT_ENV = "ACCEL_KERNEL_TRANSPORT"  # "ipc": kernels over Unix sockets, no network interface at all


class NotebookError(RuntimeError):
    """A notebook failed: carries its name and the failing cell's error."""


@dataclass
class RunOutput:
    notebook: Path
    executed: Path
    results: Path
    seconds: float


def notebook_parameters(path: str | os.PathLike, nb: Any = None) -> dict[str, Parameter]:
    """The parameters the notebook's ``parameters`` cell declares (name -> :class:`Parameter`),
    with each knob's values from the notebook's profile table (types and bounds for the
    ``None`` ones, see :mod:`accel.repro.parameters`)."""
    path = Path(path)
    nb = read_notebook(path) if nb is None else nb
    params = parse_parameters(parameters_cell(nb, path.name), path.name)
    return with_profiles(params, profile_table([c.source for c in nb.cells if c.cell_type == "code"]))


def check_parameters(path: str | os.PathLike, params: dict[str, Any],
                     defaults: dict[str, Parameter] | None = None) -> dict[str, Any]:
    """Refuse unknown names, wrong types and values outside a parameter's declared range.

    ``defaults`` (from :func:`notebook_parameters`) saves re-reading the notebook when
    many parameter sets are checked, as a sweep does.
    """
    if defaults is None:
        defaults = notebook_parameters(path)
    name = Path(path).name
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ValueError(f"{name} has no parameter {', '.join(map(repr, unknown))}; "
                         f"valid parameters: {', '.join(defaults)}")
    if "profile" in params:
        check_profile(params["profile"])
    context = effective_values(defaults, params)
    for key, value in params.items():
        defaults[key].check(value, name, context)
    return params


def parse_value(text: str) -> Any:
    """Command-line values: Python literals (3, 1e-3, [1, 2], True, None) else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def run_notebook(path: str | os.PathLike, out_dir: str | os.PathLike, params: dict[str, Any] | None = None,
                 *, profile: str = "cpu", name: str | None = None, log_output: bool = False,
                 progress: bool | None = False) -> RunOutput:
    """Execute ``path`` into ``out_dir/<name>.ipynb`` with its record at ``out_dir/<name>.json``.

    Both are written under temporary names and renamed when the run is complete, the
    notebook first and the record last: a record at its final name means the whole run
    finished, so an interrupted run (Ctrl-C, a killed process) never leaves output that
    looks finished. A previous run's record of the same name is removed first.
    ``progress`` shows a bar over the cells (None: only on a terminal), with the time
    left estimated from the previous run's cell durations in ``out_dir``.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    path = Path(path)
    params = {"profile": profile, **(params or {})}
    nb = read_notebook(path)
    check_parameters(path, params, notebook_parameters(path, nb))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = name or path.stem
    executed, results = out_dir / f"{name}.ipynb", out_dir / f"{name}.json"
    failed = out_dir / f"{name}.failed.ipynb"
    tmp = out_dir / f".{name}.{os.getpid()}.partial.ipynb"
    tmp_results = out_dir / f".{name}.{os.getpid()}.partial.json"
    bar = _cell_progress(name, executed, len(nb.cells) + 1, progress)
    for stale in (results, failed, tmp_results):  # without its record, an old notebook is not a result
        stale.unlink(missing_ok=True)
    previous = os.environ.get(RESULTS_ENV)
    os.environ[RESULTS_ENV] = str(tmp_results.resolve())
    start = time.perf_counter()
    try:
        papermill.execute_notebook(nb, str(tmp), parameters=params, cwd=str(Path.cwd()),
                                   kernel_name="python3", progress_bar=False, log_output=log_output,
                                   **_engine(bar), **_transport())
    except PapermillExecutionError as err:
        _keep_failed(tmp, failed, tmp_results)
        raise NotebookError(f"{path.name} failed in cell {err.exec_count}: {err.ename}: {err.evalue}\n"
                            f"(executed notebook with the traceback: {failed})") from None
    except Exception as err:  # a dead kernel, a timeout: not a cell's error
        _keep_failed(tmp, failed, tmp_results)
        where = f"(partial notebook: {failed})" if failed.exists() else "(no notebook was saved)"
        raise NotebookError(f"{path.name} failed: {type(err).__name__}: {err}\n{where}") from err
    finally:
        if bar is not None:
            bar.close()
        if previous is None:
            os.environ.pop(RESULTS_ENV, None)
        else:
            os.environ[RESULTS_ENV] = previous
    os.replace(tmp, executed)
    if not tmp_results.exists():
        raise NotebookError(f"{path.name} ran but wrote no results record (call results.save())")
    os.replace(tmp_results, results)
    return RunOutput(path, executed, results, time.perf_counter() - start)


def _cell_progress(name: str, executed: Path, cells: int, enabled: bool | None) -> Any:
    if enabled is False:
        return None
    from .progress import CellProgress, previous_durations
    bar = CellProgress(name, cells, previous_durations(executed) if executed.exists() else None, enabled)
    if bar.bar.disable:
        bar.close()
        return None
    return bar


def _engine(bar: Any) -> dict[str, Any]:
    """papermill's engine, with a hook that advances ``bar`` after each cell (when there is one)."""
    if bar is None:
        return {}
    from papermill.engines import NBClientEngine, papermill_engines

    class ProgressEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, **kwargs: Any) -> Any:
            complete = nb_man.cell_complete

            def cell_complete(cell: Any, cell_index: int | None = None, **kw: Any) -> Any:
                out = complete(cell, cell_index=cell_index, **kw)
                bar.cell_done(cell_index)
                return out

            nb_man.cell_complete = cell_complete
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    papermill_engines.register("accel-progress", ProgressEngine)
    return {"engine_name": "accel-progress"}


def _transport() -> dict[str, Any]:
    """``$ACCEL_KERNEL_TRANSPORT=ipc``: talk to the kernel over Unix sockets instead of TCP on
    127.0.0.1, so a run needs no network interface at all (``unshare -n``, a locked-down node)."""
    transport = os.environ.get(TRANSPORT_ENV, "tcp")
    if transport not in ("tcp", "ipc"):
        raise ValueError(f"${TRANSPORT_ENV} must be tcp or ipc, got {transport!r}")
    if transport == "tcp":
        return {}
    from jupyter_client import KernelManager

    class IPCKernelManager(KernelManager):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(transport="ipc", **kwargs)

    return {"kernel_manager_class": IPCKernelManager}


def _keep_failed(tmp: Path, failed: Path, tmp_results: Path) -> None:
    """Keep the failed run's notebook (it shows the traceback); drop its partial record."""
    if tmp.exists():
        os.replace(tmp, failed)
    tmp_results.unlink(missing_ok=True)
