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
from .parameters import Parameter, parse_parameters
from .profiles import check_profile
from .results import RESULTS_ENV


class NotebookError(RuntimeError):
    """A notebook failed: carries its name and the failing cell's error."""


@dataclass
class RunOutput:
    notebook: Path
    executed: Path
    results: Path
    seconds: float


def notebook_parameters(path: str | os.PathLike) -> dict[str, Parameter]:
    """The parameters the notebook's ``parameters`` cell declares (name -> :class:`Parameter`)."""
    path = Path(path)
    return parse_parameters(parameters_cell(read_notebook(path), path.name), path.name)


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
    for key, value in params.items():
        defaults[key].check(value, name)
    return params


def parse_value(text: str) -> Any:
    """Command-line values: Python literals (3, 1e-3, [1, 2], True, None) else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def run_notebook(path: str | os.PathLike, out_dir: str | os.PathLike, params: dict[str, Any] | None = None,
                 *, profile: str = "cpu", name: str | None = None, log_output: bool = False) -> RunOutput:
    """Execute ``path`` into ``out_dir/<name>.ipynb`` with its record at ``out_dir/<name>.json``.

    Both are written under temporary names and renamed when the run is complete, the
    notebook first and the record last: a record at its final name means the whole run
    finished, so an interrupted run (Ctrl-C, a killed process) never leaves output that
    looks finished. A previous run's record of the same name is removed first.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    path = Path(path)
    params = {"profile": profile, **(params or {})}
    nb = read_notebook(path)
    check_parameters(path, params, parse_parameters(parameters_cell(nb, path.name), path.name))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = name or path.stem
    executed, results = out_dir / f"{name}.ipynb", out_dir / f"{name}.json"
    failed = out_dir / f"{name}.failed.ipynb"
    tmp = out_dir / f".{name}.{os.getpid()}.partial.ipynb"
    tmp_results = out_dir / f".{name}.{os.getpid()}.partial.json"
    for stale in (results, failed, tmp_results):  # without its record, an old notebook is not a result
        stale.unlink(missing_ok=True)
    previous = os.environ.get(RESULTS_ENV)
    os.environ[RESULTS_ENV] = str(tmp_results.resolve())
    start = time.perf_counter()
    try:
        papermill.execute_notebook(nb, str(tmp), parameters=params, cwd=str(Path.cwd()),
                                   kernel_name="python3", progress_bar=False, log_output=log_output)
    except PapermillExecutionError as err:
        _keep_failed(tmp, failed, tmp_results)
        raise NotebookError(f"{path.name} failed in cell {err.exec_count}: {err.ename}: {err.evalue}\n"
                            f"(executed notebook with the traceback: {failed})") from None
    except Exception as err:  # a dead kernel, a timeout: not a cell's error
        _keep_failed(tmp, failed, tmp_results)
        where = f"(partial notebook: {failed})" if failed.exists() else "(no notebook was saved)"
        raise NotebookError(f"{path.name} failed: {type(err).__name__}: {err}\n{where}") from err
    finally:
        if previous is None:
            os.environ.pop(RESULTS_ENV, None)
        else:
            os.environ[RESULTS_ENV] = previous
    os.replace(tmp, executed)
    if not tmp_results.exists():
        raise NotebookError(f"{path.name} ran but wrote no results record (call results.save())")
    os.replace(tmp_results, results)
    return RunOutput(path, executed, results, time.perf_counter() - start)


def _keep_failed(tmp: Path, failed: Path, tmp_results: Path) -> None:
    """Keep the failed run's notebook (it shows the traceback); drop its partial record."""
    if tmp.exists():
        os.replace(tmp, failed)
    tmp_results.unlink(missing_ok=True)
