"""Normalization experiments: how a trained network's predictions depend on the statistics
its norm layers use at test time.

BatchNorm normalizes with the current batch's mean and variance in training and with
running averages in evaluation (Ioffe & Szegedy 2015, Sec. 3.1); its output for one
example is therefore a function of the examples sharing its batch, which LayerNorm,
computing statistics over one example's own features, avoids (Ba et al. 2016, Sec. 3).
The helpers here measure those two facts on trained networks, and keep the trained
networks (and callbacks) of a multi-seed run for such measurements after training.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import pandas as pd
import pytorch_lightning as pl
import torch
from torch import nn

from ..models.norm import predict
from ..training import train_seeds


@dataclass
class KeptRuns:
    """What :func:`train_seeds_kept` trained: the stacked per-epoch ``history`` and, per seed,
    the trained module and the callbacks that watched it."""

    history: pd.DataFrame
    modules: dict[int, pl.LightningModule] = field(default_factory=dict)
    callbacks: dict[int, list[pl.Callback]] = field(default_factory=dict)

    @property
    def nets(self) -> dict[int, nn.Module]:
        """Per seed, the trained network inside the module (``Classifier.net``), for :func:`predict`."""
        return {s: getattr(m, "net", m) for s, m in self.modules.items()}


def train_seeds_kept(build: Callable[[], pl.LightningModule], datamodule: pl.LightningDataModule, epochs: int,
                     seeds: Iterable[int], *, callbacks: Callable[[], list[pl.Callback]] | None = None,
                     **labels: Any) -> KeptRuns:
    """:func:`accel.training.train_seeds`, keeping each seed's trained module and callbacks.

    The seeding is exactly ``train_seeds``' (the RNG seeded, then ``datamodule.seed`` set,
    then ``build()``, then ``callbacks()``), so the numbers are the same; this only
    remembers what was built, because this chapter measures the networks after training
    (train vs eval mode, re-batching) and reads its landscape probes' records.
    """
    seeds = list(seeds)
    modules: list[pl.LightningModule] = []
    kept: list[list[pl.Callback]] = []

    def build_and_keep() -> pl.LightningModule:
        modules.append(build())
        return modules[-1]

    def callbacks_and_keep() -> list[pl.Callback]:
        kept.append(callbacks() if callbacks else [])
        return kept[-1]

    history = train_seeds(build_and_keep, datamodule, epochs, seeds, callbacks=callbacks_and_keep, **labels)
    return KeptRuns(history, dict(zip(seeds, modules)), dict(zip(seeds, kept)))


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows of ``logits`` whose argmax is the label ``y``."""
    return float((logits.argmax(1) == y).float().mean())


def train_eval_accuracies(net: nn.Module, x: torch.Tensor, y: torch.Tensor, shifted: torch.Tensor, *,
                          batch_sizes: Iterable[int] = (2, 8, 100), shifted_batch_size: int = 100) -> pd.DataFrame:
    """Test accuracy of ``net`` under each choice of normalization statistics at test time.

    Rows ``inputs, mode, accuracy``: on the clean inputs ``x`` in evaluation mode (running
    statistics, as deployed) and in training mode with each test batch's own statistics
    for every size in ``batch_sizes``; on ``shifted`` (the same examples under a shift
    the network never saw) in evaluation mode and with batch statistics of
    ``shifted_batch_size``. Training mode runs on a copy (:func:`predict`), so the
    running statistics stay untouched. A batch-independent norm gives one accuracy in
    every mode of one input; BatchNorm's spread is its train/eval discrepancy.
    """
    rows = [dict(inputs="clean", mode="eval (running stats)", accuracy=accuracy(predict(net, x), y))]
    for b in batch_sizes:
        rows.append(dict(inputs="clean", mode=f"train, batch {b}",
                         accuracy=accuracy(predict(net, x, batch_size=b, batch_stats=True), y)))
    rows.append(dict(inputs="shifted", mode="eval (running stats)", accuracy=accuracy(predict(net, shifted), y)))
    rows.append(dict(inputs="shifted", mode=f"train, batch {shifted_batch_size}",
                     accuracy=accuracy(predict(net, shifted, batch_size=shifted_batch_size, batch_stats=True), y)))
    return pd.DataFrame(rows)


def mode_gap(net: nn.Module, x: torch.Tensor, batch_size: int = 2) -> float:
    """Largest |logit| difference between training mode (statistics of batches of
    ``batch_size``) and evaluation mode: 0 up to rounding for a norm without batch statistics."""
    return float((predict(net, x, batch_size=batch_size, batch_stats=True) - predict(net, x)).abs().max())


def changed_predictions(net: nn.Module, x: torch.Tensor, batch_size: int = 8, seed: int = 0) -> float:
    """Fraction of the predicted classes of ``x`` that change when ``x`` is classified twice,
    in training mode, in batches of ``batch_size``: once in its order, once after a random
    permutation (drawn from a generator seeded with ``seed``, not the global RNG).

    With batch statistics an example's output depends on its batch companions (Ba et al.
    2016, Sec. 3), so the fraction is above 0 for BatchNorm and exactly 0 for norms that
    use one example's own features (LayerNorm).
    """
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    a = predict(net, x, batch_size=batch_size, batch_stats=True).argmax(1)
    b = predict(net, x[perm], batch_size=batch_size, batch_stats=True).argmax(1)[torch.argsort(perm)]
    return float((a != b).float().mean())
