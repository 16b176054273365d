"""Regenerate the test notebooks of this folder: ``python tests/assets/make_assets.py``.

``sweep_tiny.ipynb`` is the notebook the sweep tests and ``benchmarks/sweep.py`` run:
it writes a results record in well under a second because it imports neither torch
nor Lightning, and its parameters let a test make one run raise (``fail``, or
``x = -1``: the accuracy 1/(1 + x) divides by zero), kill the worker process that runs
it once (``kill_marker``) or count executions (``log``).
"""
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

PARAMS = '''profile = "cpu"    # smoke | cpu | full
seed = 0
x = 1.0
fail = False       # raise in the second code cell
kill_marker = ""   # a path: if it does not exist, create it and kill the worker process
log = ""           # a path: append one line per execution (tests count executions)'''

BODY = '''import os
import signal

from accel.repro import claims
from accel.repro.results import Results

if log:
    with open(log, "a") as f:
        f.write(f"x={x} seed={seed}\\n")
if kill_marker and not os.path.exists(kill_marker):
    open(kill_marker, "w").close()
    os.kill(os.getppid(), signal.SIGKILL)  # the kernel's parent is the process running this notebook
    os._exit(1)
if fail:
    raise RuntimeError(f"asked to fail at x={x}, seed={seed}")
results = Results("sweep_tiny", profile, seed, {"x": x})
loss = results.metric("loss", x ** 2 + 0.1 * seed)
results.metric("accuracy", 1 / (1 + x))
results.claim(claims.threshold("tiny.loss_small", "the loss is below 1", "a test", loss, "<", 1.0, kind="check"))
results.save()'''


def sweep_tiny() -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [new_markdown_cell("# A tiny notebook for the sweep tests"),
                new_code_cell(PARAMS, metadata={"tags": ["parameters"]}),
                new_code_cell(BODY)]
    return nb


if __name__ == "__main__":
    nbformat.write(sweep_tiny(), HERE / "sweep_tiny.ipynb")
