"""Selecting from tidy tables: the rows of one arm, and one arm's values as an array.

Chapters keep every run in one long table (a row per run × epoch, with the arm's labels
as columns) and compare arms by pulling out one column for a given set of labels. An
empty selection is an error that lists the values each label does take, so a typo in
an arm's name cannot turn into a comparison of nothing.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def select(table: pd.DataFrame, **where: Any) -> pd.DataFrame:
    """The rows whose columns equal ``where``'s values (a list or tuple means "any of these")."""
    mask = np.ones(len(table), dtype=bool)
    for column, wanted in where.items():
        if column not in table.columns:
            raise ValueError(f"no column {column!r}; columns: {', '.join(map(str, table.columns))}")
        col = table[column]
        mask &= col.isin(wanted).to_numpy() if isinstance(wanted, (list, tuple, set)) else (col == wanted).to_numpy()
    rows = table[mask]
    if rows.empty:
        seen = {c: sorted(map(str, table[c].unique()))[:12] for c in where}
        raise ValueError(f"no rows with {where}; the table has " +
                         "; ".join(f"{c} in {v}" for c, v in seen.items()))
    return rows


def values(table: pd.DataFrame, column: str, **where: Any) -> np.ndarray:
    """``column`` of the selected rows as a float array, one entry per row (e.g. per seed)."""
    rows = select(table, **where)
    if column not in rows.columns:
        raise ValueError(f"no column {column!r}; columns: {', '.join(map(str, table.columns))}")
    return rows[column].to_numpy(dtype=float)


def last(table: pd.DataFrame, by: str | list[str] = "seed", order: str = "epoch") -> pd.DataFrame:
    """Each group's last row by ``order`` (the end of every run of a per-epoch history)."""
    keys = [by] if isinstance(by, str) else list(by)
    return table.sort_values(order, kind="stable").groupby(keys, sort=False).tail(1)
