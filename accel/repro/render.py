"""What the book adds to an executed chapter before Jupyter Book renders it, and the pages
it generates from the results records.

:func:`prepare_for_book` takes papermill's executed notebook and the chapter's results
record and returns the page a reader gets: a generated "Findings at this profile" box
under the title (one line per empirical claim, linking to the row of the verdict table
that decided it), a "Rerun this chapter" box and a provenance box at the end, papermill's
injected parameters and the configuration dump hidden, no machine paths, and a first
(hidden) Markdown cell telling whoever downloads the notebook how to install `accel`.
:func:`finish_stage` writes the generated pages (the report, its downloads, the intro's
overview) into the staged sources. `accel book` calls both; nothing here executes code,
and nothing here is typed by hand: every number comes from the record.
"""
from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

from .notebook import PARAMETERS_TAG
from .verdicts import (CLAIM, anchor_id, apart, badge, claim_dict, counts, fmt_measured, fmt_number, headline,
                       NOT_A_NUMBER, quantity, unit_of, why)

INJECTED_TAG = "injected-parameters"
GENERATED = "accel"  # cell metadata key marking the cells this module adds (so a rerun replaces them)
DEFAULT_REPOSITORY = "https://github.com/accel-book/accelerating-network-training"


def prepare_for_book(executed: Any, record: dict[str, Any] | None, source: Path) -> Any:
    """The executed notebook as the book shows it (see the module docstring); idempotent."""
    root = book_root(Path(source))
    executed.cells = [c for c in executed.cells if GENERATED not in c.metadata]
    for cell in executed.cells:
        tags = list(cell.metadata.get("tags", []))
        if INJECTED_TAG in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
        elif cell.cell_type == "code" and _shows_a_config_dict(cell) and "remove-output" not in tags:
            cell.metadata["tags"] = [*tags, "remove-output"]
    scrub_paths(executed, root)
    add_claim_anchors(executed)
    if record is None:
        return executed
    url = repository_url(root)
    rel = _relative(Path(source), root)
    params = executed.metadata.get("papermill", {}).get("parameters", {})
    title_at = _split_title(executed)
    executed.cells.insert(title_at + 1, _markdown(findings_box(record), "findings"))
    executed.cells.insert(0, _markdown(install_note(record, url, rel), "install", remove=True))
    executed.cells.append(_markdown(rerun_box(record, rel, params, _parameters_source(executed)), "rerun"))
    executed.cells.append(_markdown(provenance_box(record), "provenance"))
    return executed


def finish_stage(stage: Path, records_dir: Path) -> list[Path]:
    """Write the generated pages into the staged sources; return the files written.

    ``book/report.md`` with ``book/claims.csv`` and ``book/records.json`` beside it (its
    downloads), and ``book/overview.md``, which ``book/intro.md`` includes.
    """
    from .report import find_records, write_downloads, write_report
    records = find_records(records_dir)
    written = write_downloads(records, stage / "book")
    written.append(write_report(records_dir, stage / "book" / "report.md",
                                execution=stage / "execution.json", records=records))
    written.append(write_overview(records, stage / "book" / "overview.md"))
    return written


# ---------------------------------------------------------------- where things are

def book_root(source: Path) -> Path:
    """The folder holding ``_toc.yml`` above ``source`` (the repository root), else its folder."""
    for folder in [source.parent, *source.parent.parents]:
        if (folder / "_toc.yml").exists():
            return folder
    return source.parent


def repository_url(root: Path) -> str:
    """``repository.url`` of ``_config.yml``: the one place the repository is named."""
    import yaml
    try:
        config = yaml.safe_load((root / "_config.yml").read_text()) or {}
    except OSError:
        return DEFAULT_REPOSITORY
    return str((config.get("repository") or {}).get("url") or DEFAULT_REPOSITORY).rstrip("/")


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name


_ABSOLUTE = re.compile(r"(?:/[\w.+-]+)+/(?:site-packages|dist-packages)/")


def scrub_paths(nb: Any, root: Path) -> None:
    """No machine paths in the page or the download: papermill's input/output paths and the
    kernel's cwd go; the checkout's and the environment's absolute paths become relative."""
    pm = nb.metadata.get("papermill", {})
    for key in ("input_path", "output_path", "cwd"):
        pm.pop(key, None)
    prefixes = sorted({str(root), str(root.resolve())}, key=len, reverse=True)

    def clean(text: str) -> str:
        for prefix in prefixes:
            text = text.replace(prefix + "/", "").replace(prefix, ".")
        return _ABSOLUTE.sub("site-packages/", text)

    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if "text" in out:
                out["text"] = clean(out["text"] if isinstance(out["text"], str) else "".join(out["text"]))
            if out.get("output_type") == "error":
                out["traceback"] = [clean(line) for line in out.get("traceback", [])]


def _shows_a_config_dict(cell: Any) -> bool:
    """A setup cell ending in a bare name whose result is a dict (``cfg``): the provenance box
    lists the resolved parameters instead."""
    lines = [line for line in cell.source.strip().splitlines() if line.strip()]
    if not lines or not re.fullmatch(r"[A-Za-z_]\w*", lines[-1].strip()):
        return False
    for out in cell.get("outputs", []):
        if out.get("output_type") == "execute_result":
            text = out.get("data", {}).get("text/plain", "")
            text = text if isinstance(text, str) else "".join(text)
            return text.lstrip().startswith("{") and text.rstrip().endswith("}")
    return False


_ROW = re.compile(r'<tr class="accel-claim" data-claim="([^"]+)">')


def add_claim_anchors(nb: Any) -> set[str]:
    """Give the first verdict-table row of every claim its ``id`` (``claim-<id>``), the target of
    the findings box and the report; later tables showing the same claim get none (ids are unique)."""
    seen: set[str] = set()
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "text/html" not in data:
                continue
            text = data["text/html"] if isinstance(data["text/html"], str) else "".join(data["text/html"])
            seen |= set(re.findall(r'<tr class="accel-claim" id="([^"]+)"', text))

            def anchor(m: re.Match) -> str:
                if m.group(1) in seen:
                    return m.group(0)
                seen.add(m.group(1))
                return f'<tr class="accel-claim" id="{m.group(1)}">'
            data["text/html"] = _ROW.sub(anchor, text)
    return seen


# ---------------------------------------------------------------- generated cells

def _markdown(text: str, what: str, remove: bool = False) -> Any:
    from nbformat.v4 import new_markdown_cell
    meta: dict[str, Any] = {GENERATED: {"generated": what}}
    if remove:
        meta["tags"] = ["remove-cell"]
    return new_markdown_cell(text, metadata=meta)


def _split_title(nb: Any) -> int:
    """Index of the cell holding the chapter's ``# title``, split so the title stands alone."""
    from nbformat.v4 import new_markdown_cell
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        lines = cell.source.splitlines()
        for j, line in enumerate(lines):
            if line.startswith("# "):
                rest = "\n".join(lines[j + 1:]).strip("\n")
                cell.source = "\n".join(lines[: j + 1])
                if rest.strip():
                    nb.cells.insert(i + 1, new_markdown_cell(rest, metadata=dict(cell.metadata)))
                return i
    return -1


def _parameters_source(nb: Any) -> str:
    for cell in nb.cells:
        if cell.cell_type == "code" and PARAMETERS_TAG in cell.metadata.get("tags", []):
            return cell.source
    return ""


def findings_line(claim: Mapping[str, Any]) -> str:
    """One finding: badge, statement (linked to its row of the verdict table), what was measured."""
    value = fmt_measured(claim.get("measured"), unit_of(claim))
    what = quantity(claim)
    if value == NOT_A_NUMBER:
        measured = f"no value{': ' + why(claim) if why(claim) else ''}"
    else:
        measured = f"measured {what} = {value}" if what and what != "value" else f"measured {value}"
    return (f'<li>{badge(claim["verdict"], claim.get("kind", CLAIM))}<span>'
            f'<a href="#{anchor_id(claim["id"])}">{html.escape(claim["statement"])}</a>'
            f' <span class="accel-finding-value">({html.escape(measured)})</span></span></li>')


def findings_box(record: Mapping[str, Any]) -> str:
    """The chapter's empirical claims at this profile, one line each, generated from the record."""
    claims = [claim_dict(c) for c in record.get("claims", [])]
    evidence = [c for c in claims if c.get("kind", CLAIM) == CLAIM]
    n = counts(claims)
    others = apart(n)
    lines = [f':::{{admonition}} Findings at this profile (`{record["profile"]}`, seed {record["seed"]})',
             ":class: accel-findings", "",
             f"**{headline(n).capitalize()}.**" + (f" Also {others}." if others else "") +
             " Each verdict is computed from this execution's numbers by the test the chapter fixed before "
             "running; a claim links to the row of the verdict table that decided it.", ""]
    if evidence:
        lines += ['<ul class="accel-findings-list">', *map(findings_line, evidence), "</ul>"]
    else:
        lines.append("This chapter tests no empirical claim at this profile; its checks are listed in the "
                     "verdict table.")
    return "\n".join(lines + [":::"])


def install_note(record: Mapping[str, Any], url: str, rel: str) -> str:
    """The first cell of the downloadable notebook (hidden in the book)."""
    name = url.rsplit("/", 1)[-1]
    return "\n".join([
        f"**This notebook is a chapter of *Accelerating Network Training*, executed with profile "
        f"`{record['profile']}` and seed {record['seed']}.** Its outputs are the book's; to rerun it you "
        f"need the `accel` package from the repository ({url}):", "",
        "```bash",
        f"git clone {url}", f"cd {name}",
        "make venv                      # .venv with the pinned CPU environment (torch first, then the pins)",
        f".venv/bin/accel run {rel} --profile {record['profile']}",
        "```", "",
        f"or, in an environment that already has `torch==2.13.0`: `pip install \"accel @ git+{url}\"`, then "
        "open this notebook in Jupyter and run all cells. Same seed, profile and device give the same numbers."])


def rerun_box(record: Mapping[str, Any], rel: str, injected: Mapping[str, Any], parameters_source: str) -> str:
    """The exact command that reproduces the page, and the knobs of the parameters cell."""
    from .parameters import parse_parameters
    extra = "".join(f" -p {k} {_shell(v)}" for k, v in injected.items() if k not in ("profile", "seed"))
    command = f"accel run {rel} --profile {record['profile']} -p seed {record['seed']}{extra}"
    lines = [":::{admonition} Rerun this chapter", ":class: accel-rerun", "",
             "From a checkout of the repository (`make venv` installs everything), this command executes "
             "the notebook as it was executed here and writes the notebook and its results record to "
             f"`runs/{Path(rel).stem}/`:", "", "```bash", f".venv/bin/{command}", "```", ""]
    try:
        params = parse_parameters(parameters_source) if parameters_source else {}
    except ValueError:
        params = {}
    knobs = [p for name, p in params.items() if name not in ("profile", "seed")]
    lines.append("`--profile smoke | cpu | full` changes every budget at once; `-p seed N` draws other seeds.")
    if knobs:
        lines += [" Parameters worth varying (`-p NAME VALUE`, from the notebook's parameters cell):", "",
                  "| parameter | default | what it sets |", "|---|---|---|"]
        lines += [f"| `{p.name}` | `{p.default!r}` | {_cell(p.help) or p.describe()} |" for p in knobs]
    lines.append("")
    lines.append("`accel sweep` runs a grid of them in parallel; see {doc}`../book/rerun`.")
    return "\n".join(lines + [":::"])


def provenance_box(record: Mapping[str, Any]) -> str:
    """Profile, seed, device, threads, versions, wall time, commit: the record's own fields."""
    versions = record.get("versions") or {}
    rows = [("profile", f"`{record.get('profile')}`"), ("seed", record.get("seed")),
            ("device", record.get("device") or "not recorded"), ("threads", record.get("threads") or "not recorded"),
            ("wall time", f"{fmt_number(float(record.get('wall_time_s', 0)), 3)} s"),
            ("git commit", f"`{str(record['git_commit'])[:12]}`" if record.get("git_commit") else "not recorded"),
            ("accel sources", f"sha256 `{str(record['accel_source_hash'])[:12]}`"
             if record.get("accel_source_hash") else "not recorded"),
            ("versions", ", ".join(f"{k} {v}" for k, v in versions.items()) or "not recorded")]
    params = record.get("params") or {}
    if params:
        rows.append(("resolved parameters", ", ".join(f"`{k}={_short(v)}`" for k, v in params.items())))
    table = ["| | |", "|---|---|", *(f"| {k} | {_cell(v)} |" for k, v in rows)]
    return "\n".join([":::{admonition} How these numbers were made", ":class: accel-provenance", "",
                      "Copied from this chapter's results record (the JSON written next to the executed "
                      "notebook):", "", *table, ":::"])


def _shell(value: Any) -> str:
    text = str(value) if not isinstance(value, (list, dict)) else repr(value)
    return text if re.fullmatch(r"[\w.,:+-]+", text) else "'" + text.replace("'", "'\\''") + "'"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def _cell(value: Any) -> str:
    return " ".join(str(value).split()).replace("|", "\\|")


# ---------------------------------------------------------------- the intro's overview

def write_overview(records: Iterable[Mapping[str, Any]], out: Path, chapter_dir: str = "../notebooks") -> Path:
    """``book/overview.md``: chapters × verdict counts and what did not hold, for the intro page."""
    from ..atomic import write_text_atomic
    return write_text_atomic(out, overview(list(records), chapter_dir))


def overview(records: list[Mapping[str, Any]], chapter_dir: str = "../notebooks") -> str:
    if not records:
        return ("```{note}\nThe chapters have not been executed in this build, so there are no verdicts to "
                "summarize yet (`make book` executes them).\n```\n")
    every = [claim_dict(c) for r in records for c in r.get("claims", [])]
    profiles = ", ".join(sorted({f"`{r['profile']}`" for r in records}))
    lines = ['<div class="accel-overview">',
             f"<p><strong>This build (profile {html.escape(profiles.replace('`', ''))}), {headline(counts(every))}."
             f"</strong> {html.escape(apart(counts(every)).capitalize())}. Generated from the chapters' results "
             "records when the book was built.</p>",
             '<table class="accel-overview-table"><thead><tr><th>chapter</th><th>held</th><th>failed</th>'
             "<th>inconclusive</th><th>checks and illustrations</th></tr></thead><tbody>"]
    failed = []
    for r in records:
        claims = [claim_dict(c) for c in r.get("claims", [])]
        n = counts(claims)
        href = f"{chapter_dir}/{r['notebook']}.html"
        lines.append(f'<tr><td><a href="{href}">{html.escape(str(r.get("title", r["notebook"])))}</a></td>'
                     f"<td>{n['held']}</td><td>{n['failed']}</td><td>{n['inconclusive']}</td>"
                     f"<td>{n['check'] + n['illustration']}</td></tr>")
        failed += [(href, c) for c in claims if c.get("kind", CLAIM) == CLAIM and c["verdict"] == "failed"]
    lines.append("</tbody></table>")
    if failed:
        lines.append("<p>Claims that did not hold at this profile:</p><ul>")
        lines += [f'<li>{badge("failed")} <a href="{href}#{anchor_id(c["id"])}">{html.escape(c["statement"])}</a> '
                  f"(measured {html.escape(fmt_measured(c.get('measured'), (c.get('details') or {}).get('unit')))})"
                  "</li>" for href, c in failed]
        lines.append("</ul>")
    lines.append("</div>")
    return "\n".join(lines) + "\n"
