"""The built book as a reader's browser shows it: headless Chromium, network off, checks on every page.

:func:`check_book` opens every page of ``_build/html`` from disk (``file://``, as a reader
who downloaded the book would) in Debian's Chromium driven by Selenium, with every host
name unresolvable and a proxy to nowhere, at 1400 px. It keeps a screenshot of each page
(the top as a reader first sees it, and the whole page) and reports, per page:

* math: MathJax loaded from the book itself and rendered every formula, with no TeX error;
* every image loaded; no raw ``{glue`` text; no ``nan`` outside code; no stderr output block;
* no table, code block, figure or formula wider than the content column (folded cells opened);
* on every chapter: the findings box, verdict badges, and an anchor for every claim it links to;
* across pages: every ``#claim-…`` link lands on an element with that id;
* no script or stylesheet loaded from another host (no CDN).

``tests/test_browser.py`` runs it on the smoke book; ``accel check-html _build/html`` (or
``accel book``) on the ``cpu`` build. Chromium comes from Debian (``chromium``,
``chromium-driver``); :func:`find_browser` says clearly when it is missing.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import unquote, urlsplit

WIDTH, HEIGHT = 1400, 1000
CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMEDRIVER = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--hide-scrollbars", "--force-device-scale-factor=1",
         '--host-resolver-rules=MAP * ~NOTFOUND', "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>")
SKIP_PAGES = {"genindex.html", "search.html", "py-modindex.html"}
BENIGN_CONSOLE = ("favicon", "invalid theme mode")  # the theme logs the latter when nothing is stored yet
FULL_PAGE_MAX = 16000  # px: taller pages are cut in the full-page screenshot


class BrowserUnavailable(RuntimeError):
    """No Chromium/ChromeDriver/Selenium here; the message says what to install."""


@dataclass
class PageReport:
    page: str
    problems: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    screenshots: list[Path] = field(default_factory=list)


def find_browser() -> tuple[str, str]:
    """Paths of Chromium and ChromeDriver, or :class:`BrowserUnavailable` naming what to install."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        raise BrowserUnavailable("selenium is not installed (it is pinned in requirements.txt)") from None
    chromium = os.environ.get("ACCEL_CHROMIUM") or next((p for p in CHROMIUM if Path(p).exists()), None)
    driver = os.environ.get("ACCEL_CHROMEDRIVER") or next((p for p in CHROMEDRIVER if Path(p).exists()), None)
    chromium = chromium or shutil.which("chromium")
    driver = driver or shutil.which("chromedriver")
    if not chromium or not driver:
        raise BrowserUnavailable("headless Chromium is not installed: `apt-get install -y chromium "
                                 "chromium-driver` (what .ci/run does when it can)")
    return chromium, driver


def book_pages(html_dir: Path) -> list[Path]:
    """Every page a reader reaches (the generated index, search and redirect pages left out)."""
    pages = []
    for path in sorted(html_dir.rglob("*.html")):
        rel = path.relative_to(html_dir)
        if rel.parts[0].startswith("_") or rel.name in SKIP_PAGES:
            continue
        if rel.as_posix() == "index.html" and "http-equiv=\"Refresh\"" in path.read_text()[:2000]:
            continue  # jupyter-book's redirect to the root page
        pages.append(path)
    return pages


_EXTERNAL = re.compile(r"""<(?:script[^>]*\ssrc|link[^>]*\shref)=["'](?:https?:)?//[^"']+["']""", re.I)


def external_assets(page: Path) -> list[str]:
    """Scripts and stylesheets the page would fetch from another host (a CDN)."""
    found = []
    for m in _EXTERNAL.finditer(page.read_text(errors="replace")):
        tag = m.group(0)
        if tag.lower().startswith("<link") and not re.search(r"rel=[\"'](?:stylesheet|preload|modulepreload)", tag, re.I):
            continue
        found.append(re.search(r"""=["']([^"']+)""", tag).group(1))
    return found


def _driver(chromium: str, chromedriver: str, profile_dir: str) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not look for drivers online
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile_dir}")
    options.add_argument(f"--window-size={WIDTH},{HEIGHT}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    return driver


_SCRIPT = r"""
const mode = arguments[0], done = arguments[arguments.length - 1];
(async () => {
  if (mode === "settle") {
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
      try { await MathJax.startup.promise; } catch (e) {}
    }
    for (const img of document.images) { img.loading = "eager"; }
    await Promise.all([...document.images].map(img => img.complete ? null :
      new Promise(r => { img.addEventListener("load", r); img.addEventListener("error", r);
                         setTimeout(r, 10000); })));
    done({});
    return;
  }
  const article = document.querySelector("article.bd-article") || document.querySelector("main") || document.body;
  document.querySelectorAll("details").forEach(d => { d.open = true; });  // folded cells count too
  await new Promise(r => setTimeout(r, 200));
  const box = article.getBoundingClientRect(), cs = getComputedStyle(article);
  const col = {left: box.left + parseFloat(cs.paddingLeft), right: box.right - parseFloat(cs.paddingRight)};
  const f = {column_width: Math.round(col.right - col.left)};
  f.mathjax = !!(window.MathJax && MathJax.version);
  const maths = [...article.querySelectorAll(".math")];
  f.math_nodes = maths.length;
  f.unrendered_math = maths.filter(m => !m.querySelector("mjx-container") && m.tagName !== "MJX-CONTAINER")
                           .map(m => m.textContent.slice(0, 80)).slice(0, 20);
  f.math_errors = [...document.querySelectorAll("mjx-merror, [data-mjx-error], .MathJax_Error, .katex-error")]
    .map(e => (e.getAttribute("data-mjx-error") || e.textContent || "").slice(0, 100));
  if (window.MathJax && MathJax.startup && MathJax.startup.document && MathJax.startup.toMML) {
    for (const item of MathJax.startup.document.math) {  // undefined macros render red, not as merror
      let mml = "";
      try { mml = MathJax.startup.toMML(item.root); } catch (e) {}
      if (/<merror|mathcolor="red"/.test(mml)) f.math_errors.push("in " + String(item.math).slice(0, 100));
    }
  }
  f.broken_images = [...article.querySelectorAll("img")].filter(i => !(i.complete && i.naturalWidth > 0))
    .map(i => i.getAttribute("src"));
  f.shrunk = [...article.querySelectorAll("img")].filter(i => /\.svg$/.test(i.getAttribute("src") || "")
      && i.naturalWidth > 0 && i.getBoundingClientRect().width < 0.85 * i.naturalWidth)
    .map(i => ({src: i.getAttribute("src"), scale: i.getBoundingClientRect().width / i.naturalWidth,
                inches: i.naturalWidth / 96}));
  const text = article.innerText;
  f.raw_glue = (text.match(/\{glue[^\n]{0,40}/g) || []).slice(0, 20);
  const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
  f.nan_text = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (n.parentElement.closest("pre, code, script, style, mjx-container, .highlight, .accel-claim-id")) continue;
    const m = n.textContent.match(/\bnan\b|^\s*(NaN|<NA>|None)\s*$/);
    if (!m) continue;
    const block = (n.parentElement.closest("p, li, td, th, dd, dt, h1, h2, h3, figcaption") || n.parentElement).innerText;
    const at = Math.max(0, block.search(/\bnan\b|NaN|<NA>|None/));
    f.nan_text.push(block.slice(Math.max(0, at - 60), at + 40).replace(/\s+/g, " ").trim());
  }
  f.nan_text = f.nan_text.slice(0, 20);
  f.stderr = [...article.querySelectorAll(".output.stderr, .cell_output .stderr")]
    .map(e => e.innerText.trim().slice(0, 120)).slice(0, 20);
  f.wide = [];
  const seen = new Set();
  for (const el of article.querySelectorAll("table, pre, div.highlight, img, svg, figure, mjx-container[display='true'], .pst-scrollable-table-container, .cell_output > .output")) {
    if (el.tagName.toLowerCase() === "svg" && el.closest("mjx-container, .accel-badge, button, a")) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    const scrolls = el.scrollWidth > el.clientWidth + 2 && getComputedStyle(el).overflowX !== "visible";
    if (r.right > col.right + 2 || r.left < col.left - 2 || scrolls) {
      const what = el.tagName.toLowerCase() + (el.className && typeof el.className === "string" ? "." + el.className.split(" ")[0] : "")
        + ": " + (el.innerText || el.getAttribute("alt") || el.getAttribute("src") || "").trim().slice(0, 60).replace(/\s+/g, " ");
      if (seen.has(what)) continue;
      seen.add(what);
      f.wide.push({what: what, width: Math.round(Math.max(r.width, el.scrollWidth))});
    }
  }
  f.wide = f.wide.slice(0, 30);
  f.findings_box = !!article.querySelector(".accel-findings");
  f.badges = article.querySelectorAll(".accel-verdicts .accel-badge").length;
  f.ids = [...document.querySelectorAll("[id]")].map(e => e.id);
  const ids = new Set(f.ids);
  f.claim_links = [...article.querySelectorAll("a[href*='#claim-']")].map(a => a.getAttribute("href"));
  f.missing_anchors = [...article.querySelectorAll(".accel-findings a[href^='#']")]
    .map(a => a.getAttribute("href").slice(1)).filter(id => !ids.has(id));
  done(f);
})();
"""


def _screenshot(driver: Any, target: Path, full: bool) -> Path:
    """The viewport, or the whole page (the window stretched to the page's height, then restored)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if not full:
        driver.save_screenshot(str(target))
        return target
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(WIDTH, min(max(height, HEIGHT), FULL_PAGE_MAX))
    try:
        driver.save_screenshot(str(target))
    finally:
        driver.set_window_size(WIDTH, HEIGHT)
    return target


def _console_errors(driver: Any) -> list[str]:
    try:
        entries = driver.get_log("browser")
    except Exception:  # noqa: BLE001 - a driver without logs: nothing to report
        return []
    return [e.get("message", "")[:200] for e in entries if e.get("level") == "SEVERE"]


def check_page(driver: Any, html_dir: Path, page: Path, screens: Path | None) -> PageReport:
    rel = page.relative_to(html_dir).as_posix()
    report = PageReport(rel)
    driver.get(page.resolve().as_uri())
    facts = driver.execute_async_script(_SCRIPT, "settle")
    if screens is not None:
        stem = rel.removesuffix(".html").replace("/", "__")
        report.screenshots.append(_screenshot(driver, screens / f"{stem}-top.png", full=False))
        driver.execute_script("document.querySelectorAll('details.accel-chapter').forEach(d => d.open = true)")
        report.screenshots.append(_screenshot(driver, screens / f"{stem}.png", full=True))
    facts.update(driver.execute_async_script(_SCRIPT, "measure"))
    facts["console_errors"] = _console_errors(driver)
    facts["external_assets"] = external_assets(page)
    report.facts = facts
    report.problems = page_problems(rel, facts)
    return report


def page_problems(rel: str, f: dict[str, Any]) -> list[str]:
    """What a reader would trip over on one page, from the facts the browser measured."""
    p = []
    if f.get("math_nodes") and not f.get("mathjax"):
        p.append(f"MathJax did not load: {f['math_nodes']} formula(s) show raw TeX")
    p += [f"formula not rendered: {t}" for t in f.get("unrendered_math", [])]
    p += [f"MathJax error: {t}" for t in f.get("math_errors", [])]
    p += [f"image did not load: {t}" for t in f.get("broken_images", [])]
    p += [f"raw glue text: {t}" for t in f.get("raw_glue", [])]
    p += [f"'nan' in the text: …{t}…" for t in f.get("nan_text", [])]
    p += [f"stderr output shown: {t}" for t in f.get("stderr", [])]
    p += [f"wider than the content column ({w['width']} px > {f.get('column_width')} px): {w['what']}"
          for w in f.get("wide", [])]
    max_in = f.get("column_width", 0) / 96
    p += [f"figure drawn {s['inches']:.1f} in wide, shown at {s['scale']:.0%} so 9-pt text reads as "
          f"{9 * s['scale']:.1f} pt (draw it at most {max_in:.1f} in wide): {s['src']}" for s in f.get("shrunk", [])]
    p += [f"script or stylesheet from another host: {u}" for u in f.get("external_assets", [])]
    p += [f"console error: {m}" for m in f.get("console_errors", []) if not any(b in m for b in BENIGN_CONSOLE)]
    if rel.startswith("notebooks/"):
        if not f.get("findings_box"):
            p.append("no 'Findings at this profile' box (render.prepare_for_book adds it from the record)")
        if not f.get("badges"):
            p.append("no verdict badges: the chapter must display results.verdict_table()")
        p += [f"findings box links to #{a}, which is not on the page (show the claim in results.verdict_table())"
              for a in f.get("missing_anchors", [])]
    return list(dict.fromkeys(p))  # each problem once


def _link_problems(reports: list[PageReport], html_dir: Path) -> None:
    """Every ``#claim-…`` link (findings, report, intro) lands on an element with that id."""
    ids = {r.page: set(r.facts.get("ids", [])) for r in reports}
    by_page = {r.page: r for r in reports}
    for r in reports:
        for href in r.facts.get("claim_links", []):
            parts = urlsplit(href)
            target = r.page if not parts.path else \
                os.path.normpath(os.path.join(os.path.dirname(r.page), unquote(parts.path))).replace(os.sep, "/")
            if target in ids and parts.fragment not in ids[target]:
                by_page[r.page].problems.append(f"link {href} lands on no element of {target}")
            elif target not in ids and not (html_dir / target).exists():
                by_page[r.page].problems.append(f"link {href} points to a missing page")


def check_book(html_dir: str | Path, screens: str | Path | None = None, pages: Iterable[Path] | None = None
               ) -> list[PageReport]:
    """Open every page of the built book in headless Chromium; one :class:`PageReport` each."""
    html_dir = Path(html_dir)
    if not (html_dir / "index.html").exists():
        raise FileNotFoundError(f"no built book at {html_dir} (index.html missing)")
    chromium, chromedriver = find_browser()
    screens = Path(screens) if screens is not None else None
    pages = list(pages) if pages is not None else book_pages(html_dir)
    reports = []
    with tempfile.TemporaryDirectory(prefix="accel-chromium-") as profile_dir:
        driver = _driver(chromium, chromedriver, profile_dir)
        try:
            for page in pages:
                reports.append(check_page(driver, html_dir, page, screens))
        finally:
            driver.quit()
    _link_problems(reports, html_dir)
    if screens is not None:
        screens.mkdir(parents=True, exist_ok=True)
        (screens / "checks.json").write_text(json.dumps(
            [{"page": r.page, "problems": r.problems, "facts": r.facts} for r in reports], indent=1, default=str))
    return reports


def problems(reports: Iterable[PageReport]) -> list[str]:
    """Every problem as "page: problem", in page order."""
    return [f"{r.page}: {p}" for r in reports for p in r.problems]


def main(argv: list[str] | None = None) -> int:
    """``accel check-html HTML_DIR [--screens DIR]``: print the problems; exit 1 if any, 0 if none."""
    import argparse
    parser = argparse.ArgumentParser(prog="accel check-html", description=__doc__.split("\n\n")[0])
    parser.add_argument("html", nargs="?", default="_build/html")
    parser.add_argument("--screens", help="screenshot folder (default: <html>/../screens)")
    args = parser.parse_args(argv)
    html = Path(args.html)
    reports = check_book(html, Path(args.screens) if args.screens else html.parent / "screens")
    found = problems(reports)
    for line in found:
        print(line)
    print(f"{len(reports)} pages checked in headless Chromium, {len(found)} problem(s); screenshots in "
          f"{args.screens or html.parent / 'screens'}")
    return 1 if found else 0
