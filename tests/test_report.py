"""The reproducibility report: built from records, failed claims shown with their numbers."""

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from accel.repro.cli import main
from accel.repro.report import claims_table, find_records, render, write_report
from accel.atomic import write_json_atomic
from accel.repro.results import Results
from accel.repro import claims


def record(notebook="01_x", seed=0, values=(0.5, 2.5)):
    r = Results(notebook, "smoke", seed, {})
    r.claim(claims.threshold("a", "A holds", "Paper 2010", values[0], "<", 1.0, what="loss"))
    r.claim(claims.threshold("b", "B | holds", "Paper 2015", values[1], "<", 1.0, what="loss"))
    return r.to_dict()


def test_one_row_per_claim_with_every_column():
    table = claims_table([record(), record("02_y", seed=3)])
    assert list(table.columns) == ["chapter", "claim", "source", "measured", "criterion", "verdict",
                                   "profile", "seed"]
    assert len(table) == 4 and list(table.verdict) == ["held", "failed"] * 2
    assert table.iloc[3].to_dict() == {"chapter": "02_y", "claim": "B | holds", "source": "Paper 2015",
                                       "measured": 2.5, "criterion": "loss < 1", "verdict": "failed",
                                       "profile": "smoke", "seed": 3}


def test_page_counts_verdicts_links_chapters_and_shows_failures_with_numbers():
    rec = record()
    rec["title"] = "Initialization"
    page = render([rec, record("02_y", values=(float("nan"), 0.1))])
    assert "**4 claims: 2 held, 2 failed, 0 inconclusive.**" in page
    assert "| [Initialization](../notebooks/01_x.ipynb) | 2 | 1 | 1 | 0 | smoke | 0 |" in page
    assert "| [02_y](../notebooks/02_y.ipynb) | 2 | 1 | 1 | 0 | smoke | 0 |" in page
    assert "- **B \\| holds** ([Initialization](../notebooks/01_x.ipynb), Paper 2015): measured 2.5, " \
           "criterion loss < 1." in page
    assert ("| [01_x](../notebooks/01_x.ipynb) | B \\| holds | Paper 2015 | 2.5 | loss < 1 | ❌ failed "
            "| smoke | 0 |") in page
    assert "| A holds | Paper 2010 | nan | loss < 1 | ❌ failed |" in page  # a NaN fails, visibly
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
    assert write_report(tmp_path / "runs", out) == out and "2 claims: 1 held, 1 failed" in out.read_text()
    assert main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "r2.md")]) == 0
    assert (tmp_path / "r2.md").read_text() == out.read_text()
    assert not list(tmp_path.rglob(".*tmp"))
