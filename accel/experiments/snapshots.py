"""SGDR's warm restarts and the snapshot ensemble they give for free.

SGDR (Loshchilov & Hutter 2017) anneals the learning rate with a cosine over a cycle and
then restarts it at its maximum. Huang et al. 2017 ("Snapshot ensembles: train 1, get M
for free") save the weights at the end of every cycle, where the rate is smallest and
the network sits in a minimum, and predict with the mean of the *last m* snapshots'
softmax outputs, p_ens(y | x) = (1/m) Σ_{i>M−m} softmax(f_i(x)); the first snapshots of
a run are the least trained, so Huang et al. ensemble the last ones. One training run
thus yields an ensemble; whether it beats the last snapshot alone, or a single run of
the same budget, depends on how different the minima of the cycles are.

Lightning's own ``ModelCheckpoint(every_n_epochs=cycle_epochs, save_top_k=-1)`` saves
the snapshots; this module trains the seeds, reads the snapshots back and scores the
ensemble of the last m of them, for every m, against the last snapshot alone. Runs
use :func:`accel.training.fit` rather than ``train_seeds`` because checkpoints need the
Trainer's ``enable_checkpointing``; they are seeded exactly as ``train_seeds`` seeds.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable, Iterable, NamedTuple, Sequence

import pandas as pd
import pytorch_lightning as pl
import torch

from ..callbacks.history import StepHistory
from ..module import Classifier
from ..seeding import seed_everything
from ..training import fit


class SnapshotRuns(NamedTuple):
    """What :func:`train_snapshots` returns, one table each, with a ``seed`` column."""

    snapshots: pd.DataFrame  # seed, snapshot (i = 1..M), epoch, test accuracy (of snapshot i alone)
    ensembles: pd.DataFrame  # seed, last (m = 1..M), ensemble accuracy (of snapshots M−m+1..M)
    history: pd.DataFrame    # per-epoch metrics (accel.callbacks.History)
    steps: pd.DataFrame      # per-update loss and learning rate (accel.callbacks.StepHistory)


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


def ensemble_accuracy(probs: Sequence[torch.Tensor], y: torch.Tensor) -> float:
    """Accuracy of the mean of ``probs`` (each snapshot's softmax outputs), Huang et al. 2017."""
    if not len(probs):
        raise ValueError("no snapshots to ensemble")
    return float((torch.stack(list(probs)).mean(0).argmax(1) == y).float().mean())


def last_m_ensembles(probs: Sequence[torch.Tensor], y: torch.Tensor) -> list[dict[str, float]]:
    """For m = 1..M: the accuracy of the ensemble of the last m snapshots (m = 1: the last
    snapshot alone), the ensembles Huang et al. 2017 report."""
    if not len(probs):
        raise ValueError("no snapshots to ensemble")
    return [{"last": m, "ensemble accuracy": ensemble_accuracy(probs[-m:], y)} for m in range(1, len(probs) + 1)]


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
    singles, ensembles, histories, steps = [], [], [], []
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
            singles += [{"seed": seed, "snapshot": i + 1, "epoch": (i + 1) * cycle_epochs,
                         "test accuracy": ensemble_accuracy([p], y_test)} for i, p in enumerate(probs)]
            ensembles += [{"seed": seed, **row} for row in last_m_ensembles(probs, y_test)]
    return SnapshotRuns(pd.DataFrame(singles), pd.DataFrame(ensembles), pd.concat(histories, ignore_index=True),
                        pd.concat(steps, ignore_index=True))


def restart_updates(cycles: int, cycle_epochs: int, steps_per_epoch: int) -> list[int]:
    """The first update of cycles 2..C: where SGDR with ``T_0 = cycle_epochs`` epochs restarts."""
    return [c * cycle_epochs * steps_per_epoch for c in range(1, cycles)]
