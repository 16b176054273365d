"""The reproducibility report: one row per claim from every executed chapter's record."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from .claims import FAILED, HELD, INCONCLUSIVE
from .results import load

_MARK = {HELD: "✅ held", FAILED: "❌ failed", INCONCLUSIVE: "➖ inconclusive"}


def claims_table(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for rec in records:
        for c in rec.get("claims", []):
            rows.append({"chapter": rec["notebook"], "claim": c["statement"], "source": c["source"],
                         "measured": c["measured"], "criterion": c["criterion"], "verdict": c["verdict"],
                         "profile": rec["profile"], "seed": rec["seed"]})
    return pd.DataFrame(rows, columns=["chapter", "claim", "source", "measured", "criterion",
                                       "verdict", "profile", "seed"])


def find_records(folder: str | Path) -> list[dict[str, Any]]:
    """Every complete results record under ``folder`` (incomplete ones are skipped)."""
    records = []
    for path in sorted(Path(folder).rglob("*.json")):
        try:
            records.append(load(path))
        except (ValueError, KeyError, json.JSONDecodeError):
            continue
    return records


def render(records: list[dict[str, Any]], chapter_dir: str = "../notebooks") -> str:
    """The report page as MyST markdown."""
    table = claims_table(records)
    counts = table["verdict"].value_counts()
    lines = ["# Reproducibility report", "",
             "Every claim the chapters test, with the number measured in this build and the "
             "verdict computed from it. Verdicts are not edited by hand: a claim that failed at "
             "this profile is listed as failed, with its numbers.", "",
             f"**{len(table)} claims: {counts.get(HELD, 0)} held, {counts.get(FAILED, 0)} failed, "
             f"{counts.get(INCONCLUSIVE, 0)} inconclusive.**", ""]
    if records:
        profiles = sorted({r["profile"] for r in records})
        wall = sum(float(r.get("wall_time_s", 0)) for r in records)
        lines += [f"Profile: {', '.join(profiles)}. Notebook wall time in total: {wall:.0f} s.", ""]
    lines += ["| chapter | claim | source | measured | criterion | verdict | profile | seed |",
              "|---|---|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        measured = f"{r.measured:.4g}" if isinstance(r.measured, float) else str(r.measured)
        link = f"[{r.chapter}]({chapter_dir}/{r.chapter}.ipynb)"
        cells = [link, r.claim, r.source, measured, r.criterion, _MARK[r.verdict], r.profile, str(r.seed)]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write_report(records_dir: str | Path, out: str | Path, chapter_dir: str = "../notebooks") -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(find_records(records_dir), chapter_dir))
    return out
