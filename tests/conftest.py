import os
from pathlib import Path

import pytest
import torch
from torch import nn

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


class SmokeBook:
    """The smoke book built once per test session: its staged sources, HTML and records.

    ``error`` holds the build's failure (a chapter that raised), if any; the chapters that
    executed are in ``stage`` all the same, so per-chapter tests can still use them.
    """

    def __init__(self, build_dir: Path, error: str | None = None):
        self.build_dir = build_dir
        self.stage = build_dir / "source"
        self.html = build_dir / "html"
        self.error = error

    def executed(self, stem: str) -> Path:
        return self.stage / "notebooks" / f"{stem}.ipynb"

    def record(self, stem: str) -> Path:
        return self.stage / "notebooks" / f"{stem}.json"


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory) -> SmokeBook:
    """``accel book --profile smoke`` into a temporary folder, once per session.

    ``ACCEL_TEST_BOOK=<build folder>`` reuses a book built before (``_build`` of ``accel
    book --profile smoke``) instead of building one.
    """
    given = os.environ.get("ACCEL_TEST_BOOK")
    if given:
        return SmokeBook(Path(given).resolve())
    from accel.repro.book import build

    build_dir = tmp_path_factory.mktemp("smoke_book") / "_build"
    try:
        build(ROOT, profile="smoke", out=build_dir, progress=False)
    except Exception as err:  # noqa: BLE001 - a failing chapter, jupyter-book's exit status: reported by the tests
        return SmokeBook(build_dir, f"{type(err).__name__}: {err}")
    return SmokeBook(build_dir)


class Quadratic(nn.Module):
    """L(w) = ½ β ‖w‖²: the gradient is βw, so every gradient change is exactly β times the step."""

    def __init__(self, beta: float, w0: list[float]):
        super().__init__()
        self.beta = beta
        self.w = nn.Parameter(torch.tensor(w0, dtype=torch.float64))


def quadratic_loss(module, batch):
    return 0.5 * module.beta * (module.w ** 2).sum()
