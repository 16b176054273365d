"""Fit a LightningModule with the book's defaults (quiet, deterministic, seeded), once or over seeds."""
from __future__ import annotations

import logging
import warnings
from typing import Any, Callable, Iterable, Sequence

import pandas as pd
import pytorch_lightning as pl

from .device import accelerator_name, default_precision
from .callbacks.history import History
from .seeding import seed_everything


def make_trainer(epochs: int, callbacks: Sequence[pl.Callback] = (), **kwargs: Any) -> pl.Trainer:
    """A Trainer without progress bars, loggers, checkpoints or summaries.

    Those are useful interactively but cost time per step in the book's small models;
    pass them through ``kwargs`` to turn them back on. ``devices``/``num_nodes``/
    ``strategy`` go straight to Lightning (DDP).
    """
    options: dict[str, Any] = dict(
        max_epochs=epochs, accelerator=accelerator_name(), devices=1, logger=False,
        enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False,
        deterministic=True, num_sanity_val_steps=0,
    )
    options.update(kwargs)
    options.setdefault("precision", default_precision(options["accelerator"]))
    quiet_lightning()
    return pl.Trainer(callbacks=list(callbacks), **options)


def quiet_lightning() -> None:
    """Silence Lightning's per-Trainer banners (accelerator, tips) in notebooks."""
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning.fabric", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", ".*LeafSpec.*")
    warnings.filterwarnings("ignore", ".*does not have many workers.*")


def fit(module: pl.LightningModule, datamodule: pl.LightningDataModule, epochs: int, *,
        seed: int | None = None, callbacks: Sequence[pl.Callback] = (), **trainer_kwargs: Any) -> pd.DataFrame:
    """Train for ``epochs`` (validating each epoch) and return the per-epoch metrics table."""
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if seed is not None:
        seed_everything(seed)
    history = History()
    trainer = make_trainer(epochs, [history, *callbacks], **trainer_kwargs)
    trainer.fit(module, datamodule=datamodule)
    return history.frame()


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
