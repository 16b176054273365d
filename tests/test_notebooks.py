"""Every chapter executes end to end under profile=smoke and writes a sound results record.

The chapters are executed once per session by the ``smoke_book`` fixture (``accel book
--profile smoke``, chapters in parallel); each test here reads one chapter's executed copy
and record from that build, so the browser test and these tests share one execution.
"""
import nbformat
import pytest

from accel.repro.book import toc_notebooks
from accel.repro.claims import VERDICTS
from accel.repro.notebook import glue_references, glued_names, read_notebook
from accel.repro.results import load
from conftest import ROOT


@pytest.mark.parametrize("notebook", toc_notebooks(ROOT), ids=lambda p: p.stem)
def test_notebook_smoke(notebook, smoke_book):
    record, executed = smoke_book.record(notebook.stem), smoke_book.executed(notebook.stem)
    assert record.exists() and executed.exists(), (
        f"{notebook.name} did not execute under smoke: {smoke_book.error or 'no record written'}")
    rec = load(record)
    assert rec["notebook"] == notebook.stem and rec["profile"] == "smoke" and rec["seed"] == 0
    assert rec["claims"], "a chapter must test at least one claim"
    for claim in rec["claims"]:
        assert claim["verdict"] in VERDICTS
        assert claim["source"] and claim["criterion"] and claim["statement"]
    assert rec["metrics"]
    missing = glue_references(read_notebook(notebook)) - glued_names(nbformat.read(executed, as_version=4))
    assert not missing, f"the prose refers to values the notebook never glued: {sorted(missing)}"
