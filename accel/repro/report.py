"""The reproducibility report: every claim of every executed chapter, from the records.

``accel book`` writes it into the staged sources (:func:`accel.repro.render.finish_stage`)
with its downloads beside it (``claims.csv``, ``records.json``); ``accel report FOLDER``
does the same by hand. Verdicts are copied from the records, never typed in: a failed
claim is listed as failed, with its measured value and criterion. The headline counts
empirical claims only; checks and single-run illustrations are reported apart.
"""
from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

from ..atomic import write_json_atomic, write_text_atomic
from .claims import CLAIM, FAILED
from .results import load
from .verdicts import (LEGEND, anchor_id, apart, claim_dict, counts, fmt_measured, fmt_number, headline,
                       unit_of, verdict_table_html, why)

COLUMNS = ["chapter", "kind", "claim", "source", "measured", "criterion", "verdict", "profile", "seed"]
CSV_COLUMNS = ["chapter", "title", "id", "kind", "claim", "source", "measured", "unit", "criterion", "verdict",
               "test", "n", "p_value", "ci_low", "ci_high", "mde", "why", "profile", "seed"]
CLAIMS_CSV, RECORDS_JSON = "claims.csv", "records.json"


def claims_table(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per claim: chapter, statement, source, measured, criterion, verdict, profile, seed."""
    rows = []
    for rec in records:
        for c in rec.get("claims", []):
            rows.append({"chapter": rec["notebook"], "kind": c.get("kind", "claim"),
                         "claim": c["statement"], "source": c["source"],
                         "measured": c["measured"], "criterion": c["criterion"], "verdict": c["verdict"],
                         "profile": rec["profile"], "seed": rec["seed"]})
    return pd.DataFrame(rows, columns=COLUMNS)


def claims_csv_table(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """The download: every claim with its test (n, p-value, interval, detectable effect)."""
    rows = []
    for rec in records:
        for c in rec.get("claims", []):
            test = c.get("test") or {}
            rows.append({"chapter": rec["notebook"], "title": rec.get("title", rec["notebook"]), "id": c.get("id"),
                         "kind": c.get("kind", CLAIM), "claim": c["statement"], "source": c["source"],
                         "measured": json.dumps(c["measured"]) if isinstance(c["measured"], (list, dict))
                         else c["measured"], "unit": unit_of(c), "criterion": c["criterion"],
                         "verdict": c["verdict"], "test": test.get("test"),
                         "n": " + ".join(map(str, test["n"])) if test.get("n") else None,
                         **{k: test.get(k) for k in ("p_value", "ci_low", "ci_high", "mde")},
                         "why": why(c) or None, "profile": rec["profile"], "seed": rec["seed"]})
    return pd.DataFrame(rows, columns=CSV_COLUMNS)


def find_records(folder: str | Path) -> list[dict[str, Any]]:
    """Every complete results record under ``folder``, in path order.

    Skipped: hidden files (a run's ``.partial`` record, which an interrupted run can
    leave complete but unrenamed), incomplete or unreadable files and JSON that is not
    a results record (a sweep's ``params.json``). Each record gets the chapter's title
    (``title``) when its executed notebook lies next to it.
    """
    folder, records = Path(folder), []
    for path in sorted(folder.rglob("*.json")):
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        try:
            record = load(path)
        except (OSError, ValueError, json.JSONDecodeError):
            continue
        if not isinstance(record, dict) or not {"notebook", "profile", "seed"} <= set(record):
            continue
        title = notebook_title(path.with_suffix(".ipynb"))
        if title:
            record["title"] = title
        records.append(record)
    return records


def notebook_title(path: str | os.PathLike) -> str | None:
    """The first ``# heading`` of a notebook's markdown cells, if the notebook exists."""
    try:
        cells = json.loads(Path(path).read_text()).get("cells", [])
    except (OSError, ValueError):
        return None
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            source = "".join(cell.get("source", ""))
            for line in source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return None


def _cell(value: Any) -> str:
    return " ".join(str(value).split()).replace("|", "\\|")


def _row(cells: Iterable[Any]) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _seconds(value: Any) -> str:
    return "–" if value is None else f"{fmt_number(float(value), 3)} s"


def _when(stamp: Any) -> str:
    """ "2026-12-01T09:46:26+00:00" as "2026-12-01 09:46 UTC"."""
    text = str(stamp or "")
    if len(text) >= 16 and text[10] == "T":
        return text[:10] + " " + text[11:16] + (" UTC" if text.endswith("+00:00") else "")
    return text or "at an unrecorded time"


def execution_section(execution: Mapping[str, Any] | None) -> list[str]:
    """How each chapter of this build was obtained (``execution.json`` of `accel book`)."""
    if not execution or not execution.get("chapters"):
        return []
    lines = ["## How this build was made", "",
             f"Built {_when(execution.get('built_at'))} with profile `{execution.get('profile')}`, "
             f"{execution.get('jobs')} chapter(s) at a time, in {_seconds(execution.get('wall_s'))} "
             f"on `{execution.get('device_kind', 'unknown')}`. A chapter is *cached* when nothing it depends "
             "on (its code cells, parameters, profile, the `accel` modules it imported, the pins, the "
             "device kind) changed since it was executed.", "",
             _row(["chapter", "profile", "executed or cached", "wall time", "device"]), "|---|---|---|---|---|"]
    for row in execution["chapters"]:
        lines.append(_row([row.get("chapter"), row.get("profile"), row.get("status"), _seconds(row.get("seconds")),
                           row.get("device") or "–"]))
    return lines + [""]


def render(records: list[dict[str, Any]], chapter_dir: str = "../notebooks",
           execution: Mapping[str, Any] | None = None, downloads: bool = False) -> str:
    """The report page as MyST markdown: the headline, the chapters, one table per chapter."""
    lines = ["# Reproducibility report", "",
             "Every claim the chapters test, with the number measured in this build and the verdict "
             "computed from it by the test the chapter fixed before running (Welch, paired or one-sample "
             "t-tests at one-sided α = 0.025, TOST for equivalence, non-inferiority where the source says "
             "\"match or exceed\"; see `accel.repro.claims`). Verdicts are not edited by hand: a claim that "
             "failed at this profile is listed as failed, with its numbers. *Checks* (identities, "
             "constructions, deterministic demonstrations of a formula) and single-run *illustrations* are "
             "shown apart and are not counted as evidence.", ""]
    if not records:
        lines += ["No results records were found. Run `make book` (or `accel book`) to execute the "
                  "chapters and fill in this page.", ""]
        return "\n".join(lines)
    every = [claim_dict(c) for r in records for c in r.get("claims", [])]
    n = counts(every)
    lines += [f"**{headline(n).capitalize()}** (of {n['held'] + n['failed'] + n['inconclusive']} empirical claims)."
              + (f" Apart: {apart(n)}." if apart(n) else ""), ""]
    if downloads:
        lines += [f"Download: {{download}}`every claim as CSV <{CLAIMS_CSV}>` (with each test's n, p-value, "
                  f"interval and detectable effect) · {{download}}`the results records as JSON <{RECORDS_JSON}>`.",
                  ""]
    profiles = sorted({str(r["profile"]) for r in records})
    wall = sum(float(r.get("wall_time_s", 0)) for r in records)
    lines += [f"Profile: {', '.join(profiles)}. Notebook wall time in total: {_seconds(wall)}.", ""]
    versions = records[0].get("versions") or {}
    if versions and all(r.get("versions") == versions for r in records):
        lines += ["Package versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".", ""]

    def page(r: Mapping[str, Any]) -> str:
        return f"{chapter_dir}/{r['notebook']}.html"

    lines += ["## By chapter", "", _row(["chapter", "held", "failed", "inconclusive", "checks and illustrations",
                                         "profile", "seed"]), "|---|---|---|---|---|---|---|"]
    for r in records:
        k = counts(claim_dict(c) for c in r.get("claims", []))
        lines.append(_row([f"[{r.get('title', r['notebook'])}]({chapter_dir}/{r['notebook']}.ipynb)", k["held"],
                           k["failed"], k["inconclusive"], k["check"] + k["illustration"], r["profile"], r["seed"]]))
    lines.append("")
    lines += execution_section(execution)
    failed = [(r, claim_dict(c)) for r in records for c in r.get("claims", [])
              if c.get("kind", CLAIM) == CLAIM and c["verdict"] == FAILED]
    if failed:
        lines += ["## Claims that did not hold", "", '<ul class="accel-failed-list">']
        for r, c in failed:
            lines.append(f'<li><a href="{page(r)}#{anchor_id(c["id"])}">{html.escape(c["statement"])}</a> '
                         f'({html.escape(str(r.get("title", r["notebook"])))}, {html.escape(c["source"])}): measured '
                         f'{html.escape(fmt_measured(c["measured"], unit_of(c)))}, criterion '
                         f'{html.escape(c["criterion"])}.</li>')
        lines += ["</ul>", ""]
    lines += ["## Every claim, by chapter", "",
              "Open a chapter to see its claims; each claim links to the row of the chapter's verdict table that "
              "decided it.", ""]
    for r in records:
        claims = [claim_dict(c) for c in r.get("claims", [])]
        title = html.escape(str(r.get("title", r["notebook"])))
        k = counts(claims)
        summary = headline(k).replace("empirical: ", "") + f" · {k['check'] + k['illustration']} checks and illustrations"
        table = verdict_table_html(claims, link=lambda c, r=r: f"{page(r)}#{anchor_id(c['id'])}", legend=False)
        lines += [f'<details class="accel-chapter"><summary><strong>{title}</strong> · {html.escape(summary)} · '
                  f'profile {html.escape(str(r["profile"]))}, seed {r["seed"]}</summary>{table}</details>', ""]
    lines += [LEGEND, ""]
    return "\n".join(lines)


def write_downloads(records: list[dict[str, Any]], folder: str | Path) -> list[Path]:
    """``claims.csv`` and ``records.json`` in ``folder``: the report's downloads."""
    folder = Path(folder)
    csv = write_text_atomic(folder / CLAIMS_CSV, claims_csv_table(records).to_csv(index=False))
    return [csv, write_json_atomic(folder / RECORDS_JSON, records)]


def write_report(records_dir: str | Path, out: str | Path, chapter_dir: str = "../notebooks", *,
                 execution: str | Path | None = None, records: list[dict[str, Any]] | None = None) -> Path:
    """Render the records under ``records_dir`` into ``out`` (written atomically), with the
    execution table from ``execution`` (``execution.json``) when that file exists and the
    downloads when they lie next to ``out``."""
    records = find_records(records_dir) if records is None else records
    table = None
    if execution is not None and Path(execution).exists():
        table = json.loads(Path(execution).read_text())
    out = Path(out)
    downloads = (out.parent / CLAIMS_CSV).exists() and (out.parent / RECORDS_JSON).exists()
    return write_text_atomic(out, render(records, chapter_dir, table, downloads))
