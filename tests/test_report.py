"""The reproducibility report: built from records, failed claims shown with their numbers."""

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from accel.repro.cli import main
from accel.repro.report import claims_table, find_records, render, write_report
from accel.atomic import write_json_atomic
from accel.repro.results import Results
from accel.repro import claims


def record(notebook="01_x", seed=0, values=(0.5, 2.5)):
    """Two empirical claims (over three seeds) and one check."""
    r = Results(notebook, "smoke", seed, {})
    r.claim(claims.mean_compare("a", "A holds", "Paper 2010", [values[0]] * 2 + [values[0] * 1.01], "<", 1.0,
                                what="loss"))
    r.claim(claims.mean_compare("b", "B | holds", "Paper 2015", [values[1]] * 2 + [values[1] * 1.01], "<", 1.0,
                                what="loss"))
    r.claim(claims.threshold("c", "C is an identity", "Paper 2016", 0.0, "<", 1.0, kind="check", what="error"))
    return r.to_dict()


def test_one_row_per_claim_with_every_column():
    table = claims_table([record(), record("02_y", seed=3)])
    assert list(table.columns) == ["chapter", "kind", "claim", "source", "measured", "criterion", "verdict",
                                   "profile", "seed"]
    assert len(table) == 6 and list(table.verdict) == ["held", "failed", "held"] * 2
    row = table.iloc[4].to_dict()
    assert row["chapter"] == "02_y" and row["kind"] == "claim" and row["verdict"] == "failed"
    assert row["measured"] == pytest.approx(2.5 * 3.01 / 3) and row["seed"] == 3
    assert "one-sample t-test" in row["criterion"] and table.iloc[5]["kind"] == "check"


def test_page_counts_verdicts_links_chapters_and_shows_failures_with_numbers():
    rec = record()
    rec["title"] = "Initialization"
    page = render([rec, record("02_y", values=(float("nan"), 0.1))])
    assert "**Empirical claims: 2 held / 1 failed / 1 inconclusive** (of 4)" in page
    assert "not counted as evidence: 2 (2 passed)" in page  # the checks, apart
    assert "| [Initialization](../notebooks/01_x.ipynb) | 2 | 1 | 1 | 0 | 1 | smoke | 0 |" in page
    assert "| [02_y](../notebooks/02_y.ipynb) | 2 | 1 | 0 | 1 | 1 | smoke | 0 |" in page
    assert "- **B \\| holds** ([Initialization](../notebooks/01_x.ipynb), Paper 2015): measured 2.508" in page
    assert "| A holds | Paper 2010 | nan |" in page and "➖ inconclusive" in page  # NaN: visibly undecided
    assert "Package versions: python" in page


def test_empty_report_says_how_to_fill_it():
    page = render([])
    assert page.startswith("# Reproducibility report") and "make book" in page and "|---|" not in page


def test_records_are_found_skipping_partial_incomplete_and_foreign_json(tmp_path):
    write_json_atomic(tmp_path / "01_x.json", record())
    write_json_atomic(tmp_path / ".01_x.123.partial.json", record("zz"))  # an interrupted run's
    write_json_atomic(tmp_path / "sweep" / "abc" / "params.json", {"x": 1.0})
    write_json_atomic(tmp_path / "02_y.json", {**record("02_y"), "complete": False})
    (tmp_path / "03_z.json").write_text('{"notebook": "03_z", "compl')
    nb = new_notebook(cells=[new_markdown_cell("# Initialization: where training starts\n\ntext"),
                             new_code_cell("x = 1")])
    nbformat.write(nb, tmp_path / "01_x.ipynb")
    found = find_records(tmp_path)
    assert [r["notebook"] for r in found] == ["01_x"]
    assert found[0]["title"] == "Initialization: where training starts"


def test_write_report_and_cli(tmp_path, capsys):
    write_json_atomic(tmp_path / "runs" / "01_x.json", record())
    out = tmp_path / "book" / "report.md"
    assert write_report(tmp_path / "runs", out) == out and "1 held / 1 failed" in out.read_text()
    assert main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "r2.md")]) == 0
    assert (tmp_path / "r2.md").read_text() == out.read_text()
    assert not list(tmp_path.rglob(".*tmp"))
