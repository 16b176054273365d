"""Repeat a training run over seeds and collect one tidy table."""
from __future__ import annotations

from typing import Any, Callable, Iterable

import pandas as pd
import pytorch_lightning as pl

from .seeding import seed_everything
from .training import fit


def train_seeds(build: Callable[[], pl.LightningModule], datamodule: pl.LightningDataModule, epochs: int,
                seeds: Iterable[int], *, callbacks: Callable[[], list[pl.Callback]] | None = None,
                **labels: Any) -> pd.DataFrame:
    """Train a fresh module per seed and stack their per-epoch histories.

    The seed is set *before* ``build()`` so the initial weights depend on it, and it also
    drives the data order (``datamodule.seed``). ``labels`` become constant columns
    (e.g. ``init="he_normal"``) for plotting with seaborn.
    """
    frames = []
    for seed in seeds:
        seed_everything(seed)
        if hasattr(datamodule, "seed"):
            datamodule.seed = seed
        module = build()
        history = fit(module, datamodule, epochs, callbacks=callbacks() if callbacks else ())
        frames.append(history.assign(seed=seed, **labels))
    return pd.concat(frames, ignore_index=True)


def at_epoch(history: pd.DataFrame, epoch: int, metric: str, by: str | list[str]) -> pd.DataFrame:
    """One value of ``metric`` per seed at ``epoch``, grouped by ``by``."""
    rows = history[history["epoch"] == epoch]
    if rows.empty:
        raise ValueError(f"no rows at epoch {epoch}; epochs run: {sorted(history['epoch'].unique())}")
    keys = [by] if isinstance(by, str) else list(by)
    return rows[keys + ["seed", metric]]
