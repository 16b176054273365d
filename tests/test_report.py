"""The reproducibility report: built from records, failed claims shown with their numbers."""

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from accel.repro.cli import main
from accel.repro.report import claims_csv_table, claims_table, find_records, render, write_report
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


def test_page_counts_empirical_claims_apart_from_checks_and_links_every_claim():
    rec = record()
    rec["title"] = "Initialization"
    page = render([rec, record("02_y", values=(float("nan"), 0.1))])
    assert "**Empirical: 2 held / 1 failed / 1 inconclusive** (of 4 empirical claims)." in page
    assert "Apart: 2 checks, not counted as evidence (all passed)." in page
    assert "| [Initialization](../notebooks/01_x.ipynb) | 1 | 1 | 0 | 1 | smoke | 0 |" in page  # the title
    assert "| [02_y](../notebooks/02_y.ipynb) | 1 | 0 | 1 | 1 | smoke | 0 |" in page
    failed = page[page.index("## Claims that did not hold"):page.index("## Every claim")]
    assert '<a href="../notebooks/01_x.html#claim-b">B | holds</a> (Initialization, Paper 2015): measured 2.508' in failed
    every = page[page.index("## Every claim"):]
    assert every.count('<details class="accel-chapter">') == 2 and "<strong>Initialization</strong>" in every
    assert 'href="../notebooks/02_y.html#claim-a">A holds</a>' in every
    assert "accel-badge accel-inconclusive" in every and "non-finite values" in every  # NaN: visibly undecided
    assert "nan" not in every.replace("non-finite", "")
    assert "Package versions: python" in page and "accel-legend" in page


def test_the_execution_table_and_downloads_appear_when_the_build_wrote_them(tmp_path):
    write_json_atomic(tmp_path / "runs" / "01_x.json", record())
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "claims.csv").write_text("x\n")
    (tmp_path / "book" / "records.json").write_text("[]")
    write_json_atomic(tmp_path / "execution.json", {"profile": "smoke", "jobs": 1, "wall_s": 3.0, "chapters": [
        {"chapter": "01_x", "profile": "smoke", "status": "cached", "seconds": 3.04, "device": "CPU"}]})
    page = write_report(tmp_path / "runs", tmp_path / "book" / "report.md", execution=tmp_path / "execution.json")
    text = page.read_text()
    assert "| 01_x | smoke | cached | 3.04 s | CPU |" in text and "{download}`the results records as JSON" in text
    assert "How this build was made" not in render([record()]) and "{download}" not in render([record()])


def test_the_csv_download_carries_each_test():
    csv = claims_csv_table([record()])
    row = csv.iloc[0]
    assert row["id"] == "a" and row["test"] == "one-sample t-test" and row["n"] == "3"
    assert 0 <= row["p_value"] <= 1 and row["ci_low"] < row["ci_high"]
    assert csv.iloc[2]["kind"] == "check" and pd.isna(csv.iloc[2]["test"])


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
