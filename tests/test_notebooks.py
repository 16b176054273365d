"""Every chapter executes end to end under profile=smoke and writes a sound results record."""
import nbformat
import pytest

from accel.repro.book import toc_notebooks
from accel.repro.claims import VERDICTS
from accel.repro.notebook import glue_references, glued_names, read_notebook
from accel.repro.results import load
from accel.repro.runner import run_notebook
from conftest import ROOT


@pytest.mark.parametrize("notebook", toc_notebooks(ROOT), ids=lambda p: p.stem)
def test_notebook_smoke(notebook, tmp_path):
    out = run_notebook(notebook, tmp_path, {"seed": 0}, profile="smoke")
    rec = load(out.results)
    assert rec["notebook"] == notebook.stem and rec["profile"] == "smoke" and rec["seed"] == 0
    assert rec["claims"], "a chapter must test at least one claim"
    for claim in rec["claims"]:
        assert claim["verdict"] in VERDICTS
        assert claim["source"] and claim["criterion"] and claim["statement"]
    assert rec["metrics"]
    missing = glue_references(read_notebook(notebook)) - glued_names(nbformat.read(out.executed, as_version=4))
    assert not missing, f"the prose refers to values the notebook never glued: {sorted(missing)}"
