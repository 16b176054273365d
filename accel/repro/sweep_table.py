"""A sweep's outputs: the tidy table of every run's metrics and claims, and its figure."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from ..atomic import atomic_path
from .grid import Run
from .results import load

SEED_NAMES = ("seed",)


def collect(runs: Iterable[Run], stem: str, swept: Sequence[str]) -> pd.DataFrame:
    """One row per finished run × numeric metric: run id, the parameters, metric, value.

    Nested metric dicts are flattened to dotted names; non-numeric metrics (lists,
    strings) are left out of the tidy table (they stay in each run's record).
    """
    rows = []
    names = list(dict.fromkeys(["profile", *swept]))
    for run in runs:
        if not run.is_complete(stem):
            continue
        record = load(run.record_path(stem))
        params = {n: _cell(run.params.get(n)) for n in names}
        for name, value in _flatten(record.get("metrics", {})):
            rows.append({"run": run.id, **params, "metric": name, "value": float(value)})
    return pd.DataFrame(rows, columns=["run", *names, "metric", "value"])


def claims_table(runs: Iterable[Run], stem: str, swept: Sequence[str]) -> pd.DataFrame:
    """One row per finished run × claim, with the verdict and the measured value."""
    rows = []
    names = list(dict.fromkeys(["profile", *swept]))
    for run in runs:
        if run.is_complete(stem):
            for c in load(run.record_path(stem)).get("claims", []):
                rows.append({"run": run.id, **{n: _cell(run.params.get(n)) for n in names},
                             "claim": c["id"], "measured": c["measured"], "criterion": c["criterion"],
                             "verdict": c["verdict"]})
    return pd.DataFrame(rows, columns=["run", *names, "claim", "measured", "criterion", "verdict"])


def _flatten(metrics: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, float]]:
    for name, value in metrics.items():
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{prefix}{name}.")
        elif isinstance(value, (int, float)):
            yield f"{prefix}{name}", value


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def summary_figure(table: pd.DataFrame, metric: str, swept: Sequence[str], path: str | os.PathLike,
                   notebook: str = "") -> Path:
    """``metric`` against the first swept non-seed parameter, other parameters as hue.

    Seeds are aggregated: the line is the mean over seeds, the band ±1 standard
    deviation (no band where a point has one seed).
    """
    import seaborn as sns
    from matplotlib.figure import Figure

    available = sorted(table["metric"].unique())
    if metric not in available:
        raise ValueError(f"no metric {metric!r} in the sweep's records; available: {', '.join(available)}")
    data = table[table["metric"] == metric].copy()
    varied = [n for n in swept if n in data and data[n].nunique() > 1]
    others = [n for n in varied if n not in SEED_NAMES]
    x = others[0] if others else (varied[0] if varied else swept[0])
    hue_cols = [n for n in others if n != x]
    hue = None
    if hue_cols:
        data["setting"] = data[hue_cols].astype(str).agg(", ".join, axis=1) if len(hue_cols) > 1 \
            else data[hue_cols[0]].astype(str)
        hue = "setting"
    seeds = [n for n in varied if n in SEED_NAMES and n != x]
    n_seeds = data[seeds[0]].nunique() if seeds else 1
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot()
    numeric = pd.api.types.is_numeric_dtype(data[x]) and not pd.api.types.is_bool_dtype(data[x])
    if x in SEED_NAMES:  # only seeds vary: each seed a point, the mean a line, ±1 sd a band
        n_seeds, mean, sd = data[x].nunique(), data["value"].mean(), data["value"].std()
        sns.scatterplot(data, x=x, y="value", hue=hue, ax=ax)
        ax.axhline(mean, color="C0", lw=1)
        if n_seeds > 1:
            ax.axhspan(mean - sd, mean + sd, color="C0", alpha=0.15)
        ax.xaxis.get_major_locator().set_params(integer=True)
    elif numeric:
        sns.lineplot(data, x=x, y="value", hue=hue, errorbar="sd", marker="o", ax=ax)
        values = data[x].astype(float)
        if (values > 0).all() and values.max() / values.min() >= 10:
            ax.set_xscale("log")
    else:
        sns.pointplot(data, x=x, y="value", hue=hue, errorbar="sd", ax=ax)
    band = f"mean over {n_seeds} seeds, band ±1 sd" if n_seeds > 1 else "one seed per point"
    head = f"{notebook}: " if notebook else ""
    ax.set(xlabel=x, ylabel=metric, title=f"{head}{metric} against {x}\n({band})")
    if hue:
        ax.legend(title=", ".join(hue_cols), fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    return Path(path)


def _write_csv(table: pd.DataFrame, path: Path) -> Path:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    return path
