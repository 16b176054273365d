import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def tiny_notebook(tmp_path: Path) -> Path:
    """A notebook with a parameters cell that writes a results record (fast: no torch)."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        new_code_cell('profile = "cpu"\nseed = 0\nlr = 0.01\nfail = False', metadata={"tags": ["parameters"]}),
        new_code_cell(
            "from accel.repro.results import Results\nfrom accel.repro import claims\n"
            "if fail:\n    raise RuntimeError('asked to fail')\n"
            "r = Results('tiny', profile, seed, {'lr': lr})\n"
            "r.metric('loss', lr * (seed + 1))\n"
            "r.claim(claims.threshold('tiny.small', 'loss is small', 'test', lr * (seed + 1), '<', 1.0, kind='check'))\n"
            "r.save()"),
    ]
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nb, path)
    return path
