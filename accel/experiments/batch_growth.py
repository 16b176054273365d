"""Don't decay the learning rate, increase the batch size (Smith et al. 2018).

SGD's gradient-noise scale is about g = lr · N / B (training-set size N, batch B;
with momentum m, lr · N / (B (1 − m)); Smith et al. 2018). Dividing lr by a factor at some epochs
and multiplying B by the same factor at the same epochs anneal g identically, and the
second takes fewer parameter updates. This module trains both arms on the same seeds.

Each run is seeded as :func:`accel.training.train_seeds` seeds (the RNG before the
module is built, and ``datamodule.seed``); the arms alternate within a seed. The
data module's batch size is restored after every run by ``BatchSizeSchedule``.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import pandas as pd
import pytorch_lightning as pl

from ..callbacks.batch_size import BatchSizeSchedule
from ..module import Classifier
from ..seeding import seed_everything
from ..training import fit

DECAY, GROW = "decay the learning rate", "increase the batch size"


def decay_or_grow(model: dict[str, Any], optimizer: dict[str, Any], datamodule: pl.LightningDataModule,
                  epochs: int, seeds: Iterable[int], *, milestones: Sequence[int], factor: int,
                  decay_schedule: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train arm ``DECAY`` (``decay_schedule``, the batch fixed) and arm ``GROW`` (no schedule,
    the batch × ``factor`` at each epoch of ``milestones``) for every seed.

    ``decay_schedule`` is the step decay the growth replaces, e.g. ``{"name": "multistep",
    "milestones_epochs": milestones, "gamma": 1 / factor, ...}``. Returns one row per run
    (``arm, seed, test accuracy, updates, final batch``) and the runs' per-epoch histories
    (with ``arm`` and ``seed`` columns).
    """
    rows, histories = [], []
    for seed in seeds:
        for arm in (DECAY, GROW):
            seed_everything(seed)
            datamodule.seed = seed
            grow = arm == GROW
            module = Classifier(model, optimizer, None if grow else decay_schedule)
            # the decay arm gets a schedule that never changes the batch, only to count its updates
            batches = BatchSizeSchedule(milestones, factor=factor) if grow else BatchSizeSchedule([], factor=1)
            history = fit(module, datamodule, epochs, callbacks=[batches], reload_dataloaders_every_n_epochs=1)
            histories.append(history.assign(arm=arm, seed=seed))
            rows.append({"arm": arm, "seed": seed, "test accuracy": history["val_acc"].iloc[-1],
                         "updates": batches.updates, "final batch": int(batches.frame()["batch_size"].iloc[-1])})
    return pd.DataFrame(rows), pd.concat(histories, ignore_index=True)
