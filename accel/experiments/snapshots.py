"""SGDR's warm restarts and the snapshot ensemble they give for free.

SGDR (Loshchilov & Hutter 2017) anneals the learning rate with a cosine over a cycle and
then restarts it at its maximum. Huang et al. 2017 ("Snapshot ensembles: train 1, get M
for free") save the weights at the end of every cycle, where the rate is smallest and
the network sits in a minimum, and predict with the mean of the snapshots' softmax
outputs, p_ens(y | x) = (1/M) Σ_m softmax(f_m(x)). One training run
thus yields an ensemble; whether it beats the last snapshot alone depends on how
different the minima of the cycles are.

Lightning's own ``ModelCheckpoint(every_n_epochs=cycle_epochs, save_top_k=-1)`` saves
the snapshots; this module trains the seeds, reads the snapshots back and scores the
ensembles of the first k of them against snapshot k alone.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable, Iterable, NamedTuple, Sequence

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch

from ..callbacks.history import StepHistory
from ..module import Classifier
from ..seeding import seed_everything
from ..training import fit


class SnapshotRuns(NamedTuple):
    """What :func:`train_snapshots` returns, one table each, with a ``seed`` column."""

    snapshots: pd.DataFrame  # seed, snapshots (k), ensemble accuracy (of 1..k), snapshot accuracy (of k)
    history: pd.DataFrame    # per-epoch metrics (accel.callbacks.History)
    steps: pd.DataFrame      # per-step loss and learning rate (accel.callbacks.StepHistory)


def snapshot_paths(folder: str | Path) -> list[Path]:
    """The checkpoints ``ModelCheckpoint(filename="{epoch}")`` wrote, in training order.

    Sorted by the epoch number in ``epoch=<n>.ckpt``, not by name, so that ``epoch=10``
    comes after ``epoch=9``.
    """
    return sorted(Path(folder).glob("*.ckpt"), key=lambda p: int(p.stem.split("=")[1]))


def snapshot_probabilities(paths: Sequence[str | Path], x: torch.Tensor) -> list[torch.Tensor]:
    """Each snapshot's softmax outputs on ``x`` (eval mode, no gradients)."""
    probs = []
    for path in paths:
        snap = Classifier.load_from_checkpoint(path, map_location=x.device).eval()
        with torch.no_grad():
            probs.append(torch.softmax(snap(x), dim=1))
    return probs


def ensemble_accuracies(probs: Sequence[torch.Tensor], y: torch.Tensor) -> list[dict[str, float]]:
    """For k = 1..M: the accuracy of the mean of the first k snapshots' probabilities
    (Huang et al. 2017) and the accuracy of snapshot k alone."""
    if not len(probs):
        raise ValueError("no snapshots to ensemble")
    rows = []
    for k in range(1, len(probs) + 1):
        ens = torch.stack(list(probs[:k])).mean(0)
        rows.append({"snapshots": k,
                     "ensemble accuracy": float((ens.argmax(1) == y).float().mean()),
                     "snapshot accuracy": float((probs[k - 1].argmax(1) == y).float().mean())})
    return rows


def train_snapshots(build: Callable[[], pl.LightningModule], datamodule: pl.LightningDataModule,
                    cycles: int, cycle_epochs: int, seeds: Iterable[int], *,
                    step_every: int = 1) -> SnapshotRuns:
    """Train ``cycles × cycle_epochs`` epochs per seed, saving a snapshot after every cycle.

    Seeds as :func:`accel.training.train_seeds` does (the RNG before ``build()``, and
    ``datamodule.seed``); the snapshots live in a temporary folder and are scored on the
    data module's test set (``x_test``, ``y_test``) before it is removed. ``build`` must
    return an :class:`accel.module.Classifier` (the snapshots are read back as one).
    """
    if cycles < 1 or cycle_epochs < 1:
        raise ValueError(f"cycles and cycle_epochs must be positive, got {cycles}, {cycle_epochs}")
    x_test, y_test = datamodule.x_test, datamodule.y_test
    rows, histories, steps = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            seed_everything(seed)
            datamodule.seed = seed
            folder = Path(tmp) / f"seed{seed}"
            saver = pl.callbacks.ModelCheckpoint(dirpath=folder, filename="{epoch}", every_n_epochs=cycle_epochs,
                                                 save_top_k=-1, save_weights_only=True)
            step_log = StepHistory(every=step_every)
            history = fit(build(), datamodule, cycles * cycle_epochs, callbacks=[saver, step_log],
                          enable_checkpointing=True)
            histories.append(history.assign(seed=seed))
            steps.append(step_log.frame().assign(seed=seed))
            probs = snapshot_probabilities(snapshot_paths(folder), x_test)
            rows += [{"seed": seed, **row} for row in ensemble_accuracies(probs, y_test)]
    return SnapshotRuns(pd.DataFrame(rows), pd.concat(histories, ignore_index=True),
                        pd.concat(steps, ignore_index=True))


def restart_loss_changes(history: pd.DataFrame, cycles: int, cycle_epochs: int,
                         metric: str = "train_loss") -> np.ndarray:
    """``metric`` of the first epoch after each warm restart minus that of the last epoch
    before it, for every seed of a per-epoch history (epochs numbered from 1).

    Restart c (c = 1..cycles−1) happens after epoch c·cycle_epochs; a positive entry
    means the loss rose across it. Per seed in the order of the ``seed`` column's groups.
    """
    changes: list[float] = []
    for _, h in history.groupby("seed"):
        by_epoch = h.set_index("epoch")[metric]
        changes += [by_epoch[c * cycle_epochs + 1] - by_epoch[c * cycle_epochs] for c in range(1, cycles)]
    return np.array(changes)
