"""The built book in headless Chromium with the network off: every page as a reader sees it.

Checked on every page (accel.repro.browser): math rendered by the book's own MathJax with
no error, every image loaded, no raw ``{glue`` text, no ``nan`` outside code, no stderr
block, nothing wider than the content column, verdict badges and the findings box on
every chapter, every claim link landing on its row, no script from another host.
Screenshots of every page go to ``_build/screens/``. Chromium comes from Debian
(``.ci/run`` installs ``chromium`` and ``chromium-driver``); where it cannot be installed
these tests are skipped, saying so.
"""
import shutil
from pathlib import Path

import pytest

from accel.repro import browser
from accel.repro.book import toc_notebooks
from conftest import ROOT

SCREENS = ROOT / "_build" / "screens"


@pytest.fixture(scope="module")
def chromium():
    try:
        return browser.find_browser()
    except browser.BrowserUnavailable as err:
        pytest.skip(f"browser test skipped: {err}")


def test_every_page_of_the_smoke_book_reads_well(chromium, smoke_book):
    assert smoke_book.error is None, f"the smoke book did not build: {smoke_book.error}"
    reports = browser.check_book(smoke_book.html, SCREENS)
    pages = {r.page for r in reports}
    chapters = [p.stem for p in toc_notebooks(ROOT)]  # the chapters of _toc.yml
    assert {f"notebooks/{c}.html" for c in chapters} <= pages
    assert {"book/intro.html", "book/report.html", "book/references.html"} <= pages
    found = browser.problems(reports)
    assert not found, f"{len(found)} problem(s) a reader would see (screenshots in {SCREENS}):\n" + "\n".join(found)


def _page(folder: Path, body: str, head: str = "") -> Path:
    page = folder / "notebooks" / "bad.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(f"<html><head>{head}</head><body><main><article class='bd-article' style='width:600px'>"
                    f"{body}</article></main></body></html>")
    (folder / "index.html").write_text("<html><body>index</body></html>")
    return page


def test_the_checks_catch_what_a_reader_would_trip_over(chromium, tmp_path):
    """Each check can fail: a page with every fault is reported for each of them."""
    page = _page(tmp_path, body=(
        "<p>final training loss nan after {glue:text}`x` steps</p>"
        "<span class='math notranslate nohighlight'>\\(\\lVert x \\rVert\\)</span>"
        "<img src='missing.png' alt='gone'>"
        "<pre>" + "x" * 400 + "</pre>"
        "<table><tr><td style='white-space:nowrap'>" + "wide " * 200 + "</td></tr></table>"
        "<div class='cell_output'><div class='output stderr'><pre>UserWarning: seaborn</pre></div></div>"
        "<div class='admonition accel-findings'><a href='#claim-x'>a claim</a></div>"),
        head="<script src='https://cdn.example.org/mathjax.js'></script>")
    report = browser.check_book(tmp_path, tmp_path / "screens", pages=[page])[0]
    text = "\n".join(report.problems)
    for expected in ("MathJax did not load", "image did not load", "raw glue text", "'nan' in the text",
                     "stderr output shown", "wider than the content column", "no verdict badges",
                     "findings box links to #claim-x", "from another host"):
        assert expected in text, f"{expected!r} not reported; got:\n{text}"
    assert (tmp_path / "screens" / "notebooks__bad-top.png").stat().st_size > 1000


def test_offline_mathjax_renders_the_books_amsmath(chromium, tmp_path):
    """The pinned MathJax, opened from disk with no network, typesets what the chapters write."""
    from accel.repro.sphinx_ext import copy_mathjax
    copy_mathjax(tmp_path / "_static")
    tex = [r"\operatorname{var}(y) = n \operatorname{var}(w)", r"\lVert x \rVert_2", r"x \in \mathbb{R}^n",
           r"\begin{aligned} f(x) &= \tfrac12 x^\top A x \\ \kappa &= \lambda_{\max}/\lambda_{\min} \end{aligned}"]
    body = "".join(f"<div class='math notranslate nohighlight'>\\[{t}\\]</div>" for t in tex) + \
        "<span class='math notranslate nohighlight'>\\(w^\\* \\undefinedmacro\\)</span>" + \
        "<div class='accel-verdicts'><span class='accel-badge'>held</span></div>" + \
        "<div class='admonition accel-findings'></div>"
    page = _page(tmp_path, body, head="<script>window.MathJax = {options: {processHtmlClass: 'math'}}</script>"
                 "<script defer src='../_static/mathjax/tex-chtml.js'></script>")
    report = browser.check_book(tmp_path, None, pages=[page])[0]
    assert report.facts["mathjax"] and report.facts["math_nodes"] == 5
    assert not report.facts["unrendered_math"]
    errors = report.facts["math_errors"]
    assert len(errors) == 1 and "undefinedmacro" in errors[0], errors  # only the broken formula


def test_a_missing_browser_is_named_with_the_install_command(monkeypatch):
    monkeypatch.setattr(browser, "CHROMIUM", ("/nonexistent/chromium",))
    monkeypatch.setattr(browser, "CHROMEDRIVER", ("/nonexistent/chromedriver",))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("ACCEL_CHROMIUM", raising=False)
    with pytest.raises(browser.BrowserUnavailable, match="apt-get install -y chromium chromium-driver"):
        browser.find_browser()


def test_accel_check_html_exits_1_on_a_page_with_a_problem_and_2_without_a_book(chromium, tmp_path, capsys):
    from accel.repro.cli import main
    _page(tmp_path, body="<p>final training loss nan</p>")
    assert main(["check-html", str(tmp_path), "--screens", str(tmp_path / "screens")]) == 1
    out = capsys.readouterr().out
    assert "'nan' in the text" in out and "pages checked in headless Chromium" in out
    assert main(["check-html", str(tmp_path / "nowhere")]) == 2
    assert "no built book" in capsys.readouterr().err
