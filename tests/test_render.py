"""What the book adds to each executed chapter, and how claims read on the page."""
import json
import math

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from accel.repro import claims
from accel.repro.render import add_claim_anchors, finish_stage, overview, prepare_for_book
from accel.repro.report import notebook_title
from accel.repro.results import Results, VerdictTable
from accel.repro.verdicts import (anchor_id, badge, fmt_measured, fmt_number, name_constants, named, quantity,
                                  decision_summary, verdict_table_html)

URL = "https://github.com/example-org/example-book"


def results(notebook="01_x"):
    r = Results(notebook, "smoke", 0, {"epochs": 2, "n_seeds": 3})
    r.claim(claims.less_than("x.faster", "Warm-up makes Adam reach the target loss in fewer steps than no warm-up",
                             "Goyal et al. 2017", [100, 110, 105], [200, 190, 210], what="steps(warm) − steps(none)",
                             unit="steps"))
    r.claim(claims.mean_compare("x.low", "The final loss is below 1", "Paper 2010", [2.0, 2.1, 1.9], "<", 1.0,
                                what="loss"))
    r.claim(claims.mean_compare("x.nan", "A diverged arm", "Paper 2011", [1.0, float("nan"), 1.2], "<", 2.0))
    r.claim(claims.threshold("x.identity", "One Newton step solves a quadratic", "Nocedal & Wright 2006",
                             1e-12, "<", 1e-9, kind="check", what="gradient norm"))
    return r


def executed_notebook(r, root):
    """A notebook as papermill leaves it: parameters, injected cell, a config dump, two verdict tables."""
    full, part = r.verdict_table(), r.verdict_table().iloc[:1]
    nb = new_notebook(cells=[
        new_markdown_cell("# Warm-up\n\nWhy warm-up helps Adam."),
        new_code_cell('profile = "cpu"   # smoke | cpu | full\nseed = 0\nlr = 0.1   # peak learning rate (0, 10]\n'
                      'warmup = None  # warm-up steps (None: from the profile)', metadata={"tags": ["parameters"]}),
        new_code_cell('# Parameters\nprofile = "smoke"\nlr = 0.05\n', metadata={"tags": ["injected-parameters"]}),
        new_code_cell("cfg = dict(epochs=2)\ncfg", outputs=[new_output("execute_result", {"text/plain": "{'epochs': 2}"},
                                                                   execution_count=1)]),
        new_code_cell("import warnings", outputs=[new_output(
            "stream", name="stderr", text=f"{root}/.venv/lib/python3.11/site-packages/seaborn/x.py:1: Warn\n")]),
        new_code_cell("part", outputs=[new_output("execute_result", {"text/html": part._repr_html_()},
                                                  execution_count=2)]),
        new_markdown_cell("## Verdicts"),
        new_code_cell("full", outputs=[new_output("execute_result", {"text/html": full._repr_html_()},
                                                  execution_count=3)]),
    ])
    nb.metadata["papermill"] = {"input_path": f"{root}/notebooks/01_x.ipynb", "output_path": "/tmp/out/01_x.ipynb",
                                "parameters": {"profile": "smoke", "lr": 0.05}}
    return nb


@pytest.fixture
def book(tmp_path):
    (tmp_path / "_toc.yml").write_text("root: book/intro\n")
    (tmp_path / "_config.yml").write_text(f"repository:\n  url: {URL}\n  branch: main\n")
    (tmp_path / "notebooks").mkdir()
    return tmp_path


def test_the_page_gets_findings_rerun_provenance_and_a_hidden_install_cell(book):
    r = results()
    record = r.to_dict()
    nb = prepare_for_book(executed_notebook(r, book), record, book / "notebooks" / "01_x.md")
    kinds = [c.metadata.get("accel", {}).get("generated") for c in nb.cells]
    assert kinds[0] == "install" and nb.cells[0].metadata["tags"] == ["remove-cell"]
    assert URL in nb.cells[0].source and "accel run notebooks/01_x.md --profile smoke" in nb.cells[0].source
    assert nb.cells[1].source == "# Warm-up" and kinds[2] == "findings"  # right under the title
    assert nb.cells[3].source == "Why warm-up helps Adam."  # the rest of the title cell, kept
    findings = nb.cells[2].source
    assert "Findings at this profile (`smoke`, seed 0)" in findings
    assert "Empirical: 1 held / 1 failed / 1 inconclusive." in findings and "1 check" in findings
    assert findings.count("<li>") == 3 and "One Newton step" not in findings  # checks are not findings
    assert f'href="#{anchor_id("x.faster")}"' in findings and "accel-badge accel-held" in findings
    assert "measured steps(warm) − steps(none) = −95 steps" in findings
    assert "no value: non-finite values" in findings  # the diverged arm says why it has no number
    rerun, provenance = nb.cells[-2].source, nb.cells[-1].source
    assert ".venv/bin/accel run notebooks/01_x.md --profile smoke -p seed 0 -p lr 0.05" in rerun
    assert "| `warmup` | `None` | warm-up steps (None: from the profile) |" in rerun and "`seed`" not in rerun
    assert "| profile | `smoke` |" in provenance and "| seed | 0 |" in provenance
    assert "| device |" in provenance and "`epochs=2`" in provenance
    assert notebook_title_of(nb) == "Warm-up"


def notebook_title_of(nb):
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.ipynb"
        nbformat.write(nb, path)
        return notebook_title(path)


def test_injected_parameters_config_dumps_and_machine_paths_are_hidden(book):
    r = results()
    nb = prepare_for_book(executed_notebook(r, book), r.to_dict(), book / "notebooks" / "01_x.md")
    tags = {c.source.splitlines()[0]: c.metadata.get("tags", []) for c in nb.cells if c.cell_type == "code"}
    assert "remove-cell" in tags["# Parameters"] and "remove-output" in tags["cfg = dict(epochs=2)"]
    assert "remove-output" not in tags['profile = "cpu"   # smoke | cpu | full']
    text = json.dumps(nb)
    assert str(book) not in text and "input_path" not in text and "output_path" not in text
    assert "site-packages/seaborn/x.py" in text  # the warning stays readable, without the machine's path


def test_every_claim_gets_one_anchor_at_its_first_row_and_preparing_twice_changes_nothing(book):
    r = results()
    nb = prepare_for_book(executed_notebook(r, book), r.to_dict(), book / "notebooks" / "01_x.md")
    html = "".join(o["data"]["text/html"] for c in nb.cells for o in c.get("outputs", []) if "data" in o
                   and "text/html" in o["data"])
    for claim in r.claims:
        assert html.count(f'id="{anchor_id(claim.id)}"') == 1
    first = next(o["data"]["text/html"] for c in nb.cells for o in c.get("outputs", [])
                 if "data" in o and "text/html" in o["data"])
    assert f'id="{anchor_id("x.faster")}"' in first  # the section's table, where the claim is tested
    again = prepare_for_book(nb, r.to_dict(), book / "notebooks" / "01_x.md")
    assert len(again.cells) == len(nb.cells) and add_claim_anchors(again) == {anchor_id(c.id) for c in r.claims}


def test_verdict_table_renders_badges_full_text_units_and_no_index():
    r = results()
    r.claim(claims.threshold("x.long", "A statement well over fifty characters long, which must never be cut",
                             "S", math.log(1.25) - 0.01, "<", named("ln 1.25", math.log(1.25)), kind="check"))
    table = r.verdict_table()
    assert isinstance(table, VerdictTable) and list(table.columns) == ["kind", "claim", "source", "criterion",
                                                                        "measured", "verdict"]
    html = table._repr_html_()
    assert "never be cut" in html and "…" not in html and "<th>id</th>" not in html and "dataframe" not in html
    assert html.index("Empirical claims") < html.index("Checks and illustrations")
    assert "−95 steps" in html and "value &lt; ln 1.25" in html and "accel-legend" in html
    assert "Welch t-test · n = 3 + 3 per arm · p &lt; 0.001" in html
    part = table.tail(2)
    assert isinstance(part, VerdictTable) and "accel-legend" not in part._repr_html_()
    assert part._repr_html_().count('class="accel-claim"') == 2


def test_numbers_read_as_numbers():
    assert fmt_number(0.2234256) == "0.2234" and fmt_number(3.1622776) == "3.162" and fmt_number(0.001) == "0.001"
    assert fmt_number(float("nan")) == "–" and fmt_number("nan") == "–" and fmt_number(float("inf")) == "∞"
    assert fmt_number(1.5e-5) == "1.5 × 10⁻⁵" and fmt_number(-2.0) == "−2" and fmt_number(25000) == "25\u202f000"
    assert fmt_measured(0.5, "%") == "0.5%" and fmt_measured([1.0, 2.0], "s") == "[1, 2] s"
    assert name_constants("value < 0.223144") == "value < ln 1.25 ≈ 0.2231"
    assert name_constants("diff > -0.693147 and 0.5") == "diff > −ln 2 ≈ −0.6931 and 0.5"
    assert name_constants("lr 0.123456") == "lr 0.123456"
    assert quantity({"criterion": "Welch t-test, one-sided α = 0.025: acc(A) − acc(B) > 0"}) == "acc(A) − acc(B)"
    assert quantity({"criterion": "0.2 <= per-layer std factor <= 0.25"}) == "per-layer std factor"


def test_a_failed_claim_shows_the_p_value_that_decided_it():
    c = claims.less_than("f", "A < B", "S", [3.0, 3.1, 2.9], [1.0, 1.1, 0.9]).to_dict()
    assert c["verdict"] == "failed"
    assert "p < 0.001 against the claim" in decision_summary(c["test"], verdict="failed")
    assert badge("failed") == '<span class="accel-badge accel-failed">failed</span>'
    assert "accel-check" in badge("held", "check") and "accel-failed" in badge("failed", "check")
    html = verdict_table_html([c], link=lambda c: "../notebooks/01_x.html#" + anchor_id(c["id"]), legend=False)
    assert 'href="../notebooks/01_x.html#claim-f"' in html and "accel-legend" not in html


def test_finish_stage_writes_report_downloads_and_overview(tmp_path):
    stage = tmp_path / "source"
    for nb in ("01_x", "02_y"):
        r = results(nb)
        (stage / "notebooks").mkdir(parents=True, exist_ok=True)
        (stage / "notebooks" / f"{nb}.json").write_text(json.dumps(r.to_dict()))
        nbformat.write(new_notebook(cells=[new_markdown_cell(f"# Chapter {nb}")]), stage / "notebooks" / f"{nb}.ipynb")
    (stage / "execution.json").write_text(json.dumps({"profile": "smoke", "jobs": 2, "wall_s": 12.5,
        "built_at": "2026-12-01T09:46:26+00:00", "device_kind": "cpu-x86_64", "chapters": [
            {"chapter": "01_x", "profile": "smoke", "status": "executed", "seconds": 10.0, "device": "AMD EPYC"},
            {"chapter": "02_y", "profile": "smoke", "status": "cached", "seconds": 2.5, "device": "AMD EPYC"}]}))
    written = finish_stage(stage, stage / "notebooks")
    assert {p.name for p in written} == {"report.md", "claims.csv", "records.json", "overview.md"}
    report = (stage / "book" / "report.md").read_text()
    assert "{download}`every claim as CSV <claims.csv>`" in report
    assert "| 02_y | smoke | cached | 2.5 s | AMD EPYC |" in report and "2026-12-01 09:46 UTC" in report
    assert "[Chapter 01_x](../notebooks/01_x.ipynb)" in report
    import pandas as pd
    csv = pd.read_csv(stage / "book" / "claims.csv")
    assert len(csv) == 8 and {"p_value", "ci_low", "mde", "unit", "title"} <= set(csv.columns)
    assert json.loads((stage / "book" / "records.json").read_text())[1]["notebook"] == "02_y"
    intro = (stage / "book" / "overview.md").read_text()
    assert "empirical: 2 held / 2 failed / 2 inconclusive" in intro
    assert f'href="../notebooks/02_y.html#{anchor_id("x.low")}"' in intro  # a failed claim, linked


def test_the_overview_says_when_nothing_was_executed():
    assert "have not been executed" in overview([])


def test_reference_labels_match_the_author_year_citations(root):
    from pybtex.database import parse_file
    from accel.repro.sphinx_ext import author_year, author_year_labels
    bib = parse_file(root / "book" / "references.bib")
    labels = dict(zip(bib.entries, author_year_labels(bib.entries.values())))
    assert labels["glorot2010understanding"] == "Glorot and Bengio, 2010"
    assert labels["lecun1998efficient"] == "LeCun et al., 1998"
    assert labels["greydanus2020scaling"] == "Greydanus, 2020"
    assert not [v for v in labels.values() if "Dollar" in v or "{" in v or "\\" in v]
    assert len(set(labels.values())) == len(labels)  # same author-year: 2017a, 2017b
    twice = [bib.entries["glorot2010understanding"]] * 2
    assert list(author_year_labels(twice)) == ["Glorot and Bengio, 2010a", "Glorot and Bengio, 2010b"]
    assert author_year(bib.entries["he2015delving"]) == "He et al., 2015"


def test_mathjax_is_copied_from_the_pinned_package(tmp_path):
    from accel.repro.sphinx_ext import copy_mathjax
    assert copy_mathjax(tmp_path) > 20
    mj = tmp_path / "mathjax"
    assert (mj / "tex-chtml.js").stat().st_size > 500_000
    assert list((mj / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))
    assert not (mj / "tex-svg.js").exists()  # only the build the book loads


def test_every_citation_of_the_book_is_in_the_bibliography(root):
    """A {cite} key missing from references.bib renders as a bare key (Sphinx only warns)."""
    import re
    from pybtex.database import parse_file
    keys = set(parse_file(root / "book" / "references.bib").entries)
    pages = sorted((root / "notebooks").glob("*.md")) + sorted((root / "book").glob("*.md"))
    cited = {(page.name, key.strip()) for page in pages
             for group in re.findall(r"\{cite[a-z:]*\}`([^`]+)`", page.read_text())
             for key in group.split(",")}
    assert len(cited) > 50
    missing = sorted(f"{page}: {key}" for page, key in cited if key not in keys)
    assert not missing, missing
