"""The same tuning budget for every optimizer at one batch size (Nado et al. 2021).

Nado et al. re-ran the LARS and LAMB benchmarks and found that Nesterov momentum and
Adam match them once every optimizer gets the same hyperparameter search. The protocol
here is the smallest version of theirs: for each optimizer a log-spaced grid of peak
learning rates of the same size, the same warm-up and decay schedule, one seed per
trial; then the best trial of each optimizer is rerun with the remaining seeds, so the
comparison is between tuned optimizers over several seeds.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from .large_batch import batch_sweep, best_trials


def lr_grid(optimizer: str, lrs: Sequence[float], batch: int,
            warmup_epochs: float) -> dict[str, dict[str, Any]]:
    """One recipe per peak learning rate, named ``"<optimizer> lr=<lr>"``, tuned at ``batch``
    itself (no scaling rule) with a linear warm-up over ``warmup_epochs``."""
    return {f"{optimizer} lr={lr:.3g}": dict(optimizer={"name": optimizer, "lr": float(lr)}, base_batch=batch,
                                             warmup_epochs=warmup_epochs) for lr in lrs}


def tune_at_batch(model: dict[str, Any], grids: dict[str, Sequence[float] | np.ndarray], batch: int,
                  datamodule: Any, epochs: int, seed: int, *, warmup_epochs: float) -> pd.DataFrame:
    """Every optimizer's learning-rate grid at ``batch``, one run per trial with ``seed``:
    the runs table of :func:`~accel.experiments.large_batch.batch_sweep` with an
    ``optimizer`` column, optimizers in the order of ``grids``."""
    trials = []
    for name, lrs in grids.items():
        t, _ = batch_sweep(model, lr_grid(name, lrs, batch, warmup_epochs), [batch], datamodule, epochs, [seed])
        trials.append(t.assign(optimizer=name))
    return pd.concat(trials, ignore_index=True)


def rerun_best(model: dict[str, Any], trials: pd.DataFrame, grids: dict[str, Sequence[float] | np.ndarray],
               batch: int, datamodule: Any, epochs: int, seeds: Sequence[int], *,
               warmup_epochs: float) -> pd.DataFrame:
    """The best trial of each optimizer (best seed-mean ``val_acc``, see
    :func:`~accel.experiments.large_batch.best_trials`) with its rows from ``trials``,
    followed by reruns of that trial with ``seeds[1:]`` (``trials`` ran ``seeds[0]``)."""
    best = best_trials(trials, "optimizer")
    finals = [best]
    for _, row in best.iterrows():
        if len(seeds) > 1:
            recipe = lr_grid(row.optimizer, grids[row.optimizer], batch, warmup_epochs)[row.recipe]
            more, _ = batch_sweep(model, {row.recipe: recipe}, [batch], datamodule, epochs, seeds[1:])
            finals.append(more.assign(optimizer=row.optimizer))
    return pd.concat(finals, ignore_index=True)
