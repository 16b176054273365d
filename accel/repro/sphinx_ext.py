"""The book's Sphinx extension (``_config.yml``: ``sphinx.extra_extensions``).

Two things Jupyter Book does not do by itself:

* **Math offline.** MathJax 3 is served from the pinned package ``sphinx-mathjax-offline``
  (copied into ``_static/mathjax``) instead of a CDN, so the book renders its math when
  opened without a network. Only the CommonHTML build with its TeX extensions and fonts
  is copied (about 4 MB, not the package's 24).
* **Launch buttons that open the stored chapter.** The book is built from executed
  ``.ipynb`` copies, but the repository stores each chapter as MyST Markdown
  (``notebooks/NN_topic.md``): Binder and JupyterHub links are pointed at the ``.md``
  (jupytext opens it as a notebook), and Colab's button, which can open only an ``.ipynb``
  stored in the repository, is left out (``accel_notebook_suffix``, default ``.md``).
* **Reference labels that match the citations.** The text cites author-year
  ("[Glorot and Bengio, 2010]"); pybtex's default ``alpha`` labels list the same entry as
  "[GB10]" (and "[GDollarG+17]" for a name with a brace). The ``accel_author_year`` style
  labels the list the same way the text cites, sorted by author and year.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable, Iterator

MATHJAX_PACKAGE = "sphinx-mathjax-offline"
MATHJAX_PATH = "mathjax/tex-chtml.js"
STYLE = "accel_author_year"
# what tex-chtml.js loads: its TeX extensions (autoload), fonts, the menu and assistive MathML
_KEEP = re.compile(r"^(tex-chtml\.js|input/tex/extensions/.*|output/chtml/fonts/woff-v2/.*|ui/.*|a11y/.*|"
                   r"adaptors/.*)$")


def mathjax_source() -> Path:
    """The MathJax folder the pinned ``sphinx-mathjax-offline`` installed."""
    from importlib import metadata
    dist = metadata.distribution(MATHJAX_PACKAGE)
    folder = Path(dist.locate_file("sphinx-mathjax-offline/static/mathjax"))
    if not (folder / "tex-chtml.js").exists():
        raise FileNotFoundError(f"{MATHJAX_PACKAGE} is installed but has no {folder / 'tex-chtml.js'}")
    return folder


def mathjax_files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and _KEEP.match(path.relative_to(folder).as_posix()):
            yield path


def copy_mathjax(out_static: Path) -> int:
    """Copy the MathJax files the book needs under ``out_static/mathjax``; return how many."""
    import shutil
    src, n = mathjax_source(), 0
    for path in mathjax_files(src):
        target = out_static / "mathjax" / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        n += 1
    return n


def _use_local_mathjax(app: Any, config: Any) -> None:
    if not str(config.mathjax_path or "").startswith(MATHJAX_PATH):
        config.mathjax_path = MATHJAX_PATH


def _copy_on_finish(app: Any, exception: Exception | None) -> None:
    if exception is None and app.builder.format == "html":
        copy_mathjax(Path(app.outdir) / "_static")


def _launch_stored_chapter(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    suffix = app.config.accel_notebook_suffix
    if suffix == ".ipynb":
        return
    for group in context.get("header_buttons", []):
        if group.get("label") != "launch-buttons":
            continue
        kept = []
        for button in group.get("buttons", []):
            if button.get("text") == "Colab":
                continue  # Colab opens only an .ipynb stored in the repository
            if "url" in button:
                button["url"] = button["url"].replace(f"{pagename}.ipynb", f"{pagename}{suffix}")
            kept.append(button)
        group["buttons"] = kept
    context["header_buttons"] = [g for g in context.get("header_buttons", [])
                                 if g.get("label") != "launch-buttons" or g.get("buttons")]


def _unique_scripts(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """Each inline script once: sphinx-thebe and sphinx-togglebutton register theirs at every
    read pass, and a second ``const THEBE_JS_URL`` is a SyntaxError in the browser."""
    seen, kept = set(), []
    for script in context.get("script_files", []):
        key = (str(getattr(script, "filename", script) or ""), tuple(sorted(getattr(script, "attributes", {}).items())))
        if key in seen:
            continue
        seen.add(key)
        kept.append(script)
    context["script_files"][:] = kept  # in place: later handlers (sphinx.ext.mathjax) append to this list


# ---------------------------------------------------------------- author-year labels

def _plain(latex: str) -> str:
    """LaTeX to text ("M{\\"u}ller" → "Müller"); the plain-text backend directly, since
    ``render_as("text")`` looks the backend up among entry points at every call (slow)."""
    from pybtex.backends.plaintext import Backend
    from pybtex.richtext import Text
    return str(Text.from_latex(latex).render(Backend()))


def author_year(entry: Any) -> str:
    """ "Greydanus, 2020", "Glorot and Bengio, 2010", "He et al., 2015": what the text's citations show."""
    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    last = [_plain(" ".join(p.prelast_names + p.last_names)) for p in persons]
    if not last:
        names = _plain(entry.fields.get("key", entry.key))
    elif len(last) == 1:
        names = last[0]
    elif len(last) == 2:
        names = f"{last[0]} and {last[1]}"
    else:
        names = f"{last[0]} et al."
    year = _plain(entry.fields.get("year", "n.d."))
    return f"{names}, {year}"


def author_year_labels(entries: Iterable[Any]) -> Iterator[str]:
    """One label per entry; two entries with the same label get "2017a", "2017b"."""
    entries = list(entries)
    labels = [author_year(e) for e in entries]
    seen: dict[str, int] = {}
    for label in labels:
        if labels.count(label) > 1:
            seen[label] = seen.get(label, 0) + 1
            yield label + "abcdefghijklmnopqrstuvwxyz"[seen[label] - 1]
        else:
            yield label


def _register_styles() -> None:
    from pybtex.plugin import register_plugin
    from pybtex.style.formatting.unsrt import Style as Unsrt
    from pybtex.style.labels import BaseLabelStyle

    class AuthorYearLabels(BaseLabelStyle):
        def format_labels(self, sorted_entries: Iterable[Any]) -> Iterator[str]:
            return author_year_labels(sorted_entries)

    class AuthorYearStyle(Unsrt):
        default_label_style = STYLE
        default_sorting_style = "author_year_title"

    for kind, cls in (("pybtex.style.labels", AuthorYearLabels), ("pybtex.style.formatting", AuthorYearStyle)):
        try:
            register_plugin(kind, STYLE, cls)
        except Exception:  # noqa: BLE001 - registered already (a second build in one process)
            pass


def setup(app: Any) -> dict[str, Any]:
    _register_styles()
    app.connect("config-inited", _use_local_mathjax)
    app.connect("build-finished", _copy_on_finish)
    app.add_config_value("accel_notebook_suffix", ".md", "html")
    app.connect("html-page-context", _launch_stored_chapter, priority=502)  # after the theme's (501)
    app.connect("html-page-context", _unique_scripts, priority=400)  # before any handler returns a template
    return {"parallel_read_safe": True, "parallel_write_safe": True}
