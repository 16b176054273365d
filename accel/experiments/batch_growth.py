"""Don't decay the learning rate, increase the batch size (Smith et al. 2018).

SGD's gradient-noise scale is about g = lr · N / B (training-set size N, batch B;
with momentum m, lr · N / (B (1 − m)); Smith et al. 2018). Dividing lr by a factor at some epochs
and multiplying B by the same factor at the same epochs anneal g identically, and the
second takes fewer parameter updates. The argument needs B ≪ N throughout (the noise
scale stops shrinking as B approaches N), so the final batch should stay far below N.
This module trains the arms on the same seeds, with a constant rate as the control.

Each run is seeded as :func:`accel.training.train_seeds` seeds (the RNG before the
module is built, and ``datamodule.seed``), so the arms of one seed start from the same
weights and see the same batches until their schedules first differ; the arms
alternate within a seed. Runs use :func:`accel.training.fit` because a batch schedule
needs the Trainer option ``reload_dataloaders_every_n_epochs=1``. The data module's
batch size is restored after every run by ``BatchSizeSchedule``.
"""
from __future__ import annotations

from typing import Any, Iterable, NamedTuple, Sequence

import pandas as pd
import pytorch_lightning as pl

from ..callbacks.batch_size import BatchSizeSchedule
from ..callbacks.history import StepHistory
from ..module import Classifier
from ..seeding import seed_everything
from ..training import fit

CONSTANT, DECAY, GROW = "constant rate", "decay the learning rate", "increase the batch size"
ARMS = (CONSTANT, DECAY, GROW)


class GrowthRuns(NamedTuple):
    """What :func:`decay_or_grow` returns, each table with ``arm`` and ``seed`` columns."""

    runs: pd.DataFrame     # one row per run: test accuracy, train loss, updates, final batch
    history: pd.DataFrame  # per-epoch metrics (accel.callbacks.History)
    steps: pd.DataFrame    # per-update loss and learning rate (accel.callbacks.StepHistory)


def decay_or_grow(model: dict[str, Any], optimizer: dict[str, Any], datamodule: pl.LightningDataModule,
                  epochs: int, seeds: Iterable[int], *, milestones: Sequence[int], factor: int,
                  decay_schedule: dict[str, Any], arms: Sequence[str] = (DECAY, GROW),
                  every: int = 10) -> GrowthRuns:
    """Train the chosen ``arms`` for every seed: ``DECAY`` (``decay_schedule``, the batch
    fixed), ``GROW`` (no schedule, the batch × ``factor`` at each epoch of ``milestones``)
    and ``CONSTANT`` (neither: the control).

    ``decay_schedule`` is the step decay the growth replaces, e.g. ``{"name": "multistep",
    "milestones_epochs": milestones, "gamma": 1 / factor, ...}``. Every run logs its loss
    and learning rate every ``every`` updates.
    """
    unknown = [a for a in arms if a not in ARMS]
    if unknown or not arms:
        raise ValueError(f"unknown arms {unknown or list(arms)}; valid: {', '.join(ARMS)}")
    rows, histories, steps = [], [], []
    for seed in seeds:
        for arm in arms:
            seed_everything(seed)
            datamodule.seed = seed
            module = Classifier(model, optimizer, decay_schedule if arm == DECAY else None)
            # the other arms get a schedule that never changes the batch, only to count their updates
            batches = BatchSizeSchedule(milestones, factor=factor) if arm == GROW else BatchSizeSchedule([], factor=1)
            log = StepHistory(every=every)
            history = fit(module, datamodule, epochs, callbacks=[batches, log], reload_dataloaders_every_n_epochs=1)
            histories.append(history.assign(arm=arm, seed=seed))
            steps.append(log.frame().assign(arm=arm, seed=seed))
            rows.append({"arm": arm, "seed": seed, "test accuracy": history["val_acc"].iloc[-1],
                         "train loss": history["train_loss"].iloc[-1], "updates": batches.updates,
                         "final batch": int(batches.frame()["batch_size"].iloc[-1])})
    return GrowthRuns(pd.DataFrame(rows), pd.concat(histories, ignore_index=True),
                      pd.concat(steps, ignore_index=True))
