"""Chapter 10's runs: residual networks with and without BatchNorm, over seeds.

- :class:`InputShift` measures how far the distribution of every residual block's layer
  input (the output of ``pre`` = norm → activation, what the block's first convolution
  sees) moves from one training step to the next: per channel, the change of its mean and
  of its standard deviation over the training batch, in units of the previous step's
  standard deviation, averaged over channels and blocks. That is the "internal covariate
  shift" Santurkar et al. 2018 set out to test, in its plain distributional sense.
- :func:`train_arms` trains each named configuration over the same seeds
  (:func:`accel.training.run_seeds`), optionally with adaptive gradient clipping
  (:class:`accel.callbacks.AdaptiveGradientClipping`) or the shift monitor, and returns
  each run's final numbers measured as deployed (evaluation mode) on the training and
  test sets.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from ..callbacks import AdaptiveGradientClipping
from ..callbacks.base import Monitor, update_index
from ..module import Classifier
from ..models.resnet import ResidualBlock
from ..training import SeedRuns, run_seeds


class InputShift(Monitor):
    """Per training step, how much the blocks' layer-input distributions moved since the last step.

    Row ``step = s`` compares the batch of update ``s`` with that of update ``s − 1``:
    ``shift = mean_{blocks, c} (|μ_s − μ_{s−1}| + |σ_s − σ_{s−1}|) / σ_{s−1}``, where μ and σ
    are a channel's mean and standard deviation over the batch (and positions).
    Different batches differ by sampling noise too, which every arm shares.
    """

    columns = ("step", "shift")

    def __init__(self, every: int = 1, eps: float = 1e-6):
        super().__init__(every)
        self.eps = eps
        self._hooks: list[Any] = []
        self._now: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._last: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def _hook(self, index: int) -> Callable:
        def keep(module: torch.nn.Module, inputs: Any, out: torch.Tensor) -> None:
            if module.training:
                dims = (0, *range(2, out.dim()))
                h = out.detach().float()
                self._now[index] = (h.mean(dims), h.std(dims, unbiased=False))
        return keep

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        blocks = [m for m in pl_module.modules() if isinstance(m, ResidualBlock)]
        if not blocks:
            raise ValueError("InputShift needs a residual network (accel.models.resnet)")
        self._hooks = [b.pre.register_forward_hook(self._hook(i)) for i, b in enumerate(blocks)]

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        step = update_index(trainer, after_update=True)
        if self._last and self.due(step):
            parts = []
            for i, (mu, sd) in self._now.items():
                mu0, sd0 = self._last[i]
                parts.append(((mu - mu0).abs() + (sd - sd0).abs()) / sd0.clamp_min(self.eps))
            self.record(step, shift=float(torch.cat(parts).mean()))
        self._last, self._now = dict(self._now), {}

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []


@dataclass
class Arms:
    """What :func:`train_arms` returns: per-epoch ``history`` and per-run ``final`` rows
    (columns ``arm``, ``seed``, ...), the input shifts per step (if measured) and the runs."""

    history: pd.DataFrame
    final: pd.DataFrame
    shifts: pd.DataFrame
    runs: dict[str, SeedRuns]


@torch.no_grad()
def evaluate(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> tuple[float, float]:
    """``(loss, accuracy)`` of ``net`` in evaluation mode (as deployed); the net's mode is restored."""
    was = net.training
    net.eval()
    try:
        logits = torch.cat([net(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    finally:
        net.train(was)
    loss = float(F.cross_entropy(logits, y))
    return (loss if math.isfinite(loss) else float("nan")), float((logits.argmax(-1) == y).float().mean())


def train_arms(data: pl.LightningDataModule, arms: Mapping[str, Mapping[str, Any]], epochs: int,
               seeds: Sequence[int], *, optimizer: Mapping[str, Any], schedule: Mapping[str, Any] | None = None,
               measure_shift: bool = False, agc_skip_head: bool = True, validate: bool = True) -> Arms:
    """Train every arm (``name: {"model": spec, "agc": λ or None, "optimizer": {...}}``) over ``seeds``.

    Arms share the seeds (same data order, and the same initial weights wherever the
    architectures agree). ``optimizer`` is the default for arms that give none. AGC
    (Brock et al. 2021b) is a per-run callback, so those arms train one seed at a time; so
    do all arms when ``measure_shift`` is on. Final rows hold the training loss and
    accuracy and the test loss and accuracy of the trained network in evaluation mode,
    the training loss averaged over the last epoch as trained (``train_loss_run``) and
    the generalization ``gap`` = train accuracy − test accuracy. ``validate=False`` skips
    the per-epoch test pass (the final rows are measured either way).
    """
    if not arms:
        raise ValueError("train_arms needs at least one arm")
    histories, finals, shifts, kept = [], [], [], {}
    for name, arm in arms.items():
        unknown = set(arm) - {"model", "agc", "optimizer", "schedule"}
        if unknown or "model" not in arm:
            raise ValueError(f"arm {name!r} needs a 'model' spec and may give 'agc', 'optimizer', 'schedule'; "
                             f"got {sorted(arm)}")
        opt, sched, agc = dict(arm.get("optimizer", optimizer)), arm.get("schedule", schedule), arm.get("agc")

        def build(model=dict(arm["model"]), opt=opt, sched=sched) -> Classifier:
            return Classifier(dict(model), dict(opt), None if sched is None else dict(sched))

        def callbacks(agc=agc) -> list[pl.Callback]:
            cbs: list[pl.Callback] = [InputShift()] if measure_shift else []
            if agc is not None:
                cbs.append(AdaptiveGradientClipping(clipping=float(agc), skip_head=agc_skip_head))
            return cbs

        per_run = measure_shift or agc is not None
        runs = run_seeds(build, data, epochs, seeds, callbacks=callbacks if per_run else None,
                         ensemble=not per_run, trainer_options=None if validate else {"limit_val_batches": 0},
                         arm=name)
        kept[name] = runs
        histories.append(runs.history)
        last = runs.history[runs.history["epoch"] == epochs].groupby("seed").last()
        for seed, net in runs.nets.items():
            train_loss, train_acc = evaluate(net, data.x_train, data.y_train)
            test_loss, test_acc = evaluate(net, data.x_test, data.y_test)
            finals.append(dict(arm=name, seed=seed, train_loss=train_loss, train_acc=train_acc,
                               test_loss=test_loss, test_acc=test_acc, gap=train_acc - test_acc,
                               train_loss_run=float(last.loc[seed, "train_loss"])))
            for cb in runs.callbacks.get(seed, []):
                if isinstance(cb, InputShift):
                    shifts.append(cb.frame().assign(arm=name, seed=seed))
    shift_frame = pd.concat(shifts, ignore_index=True) if shifts else pd.DataFrame(columns=["step", "shift", "arm", "seed"])
    return Arms(pd.concat(histories, ignore_index=True), pd.DataFrame(finals), shift_frame, kept)


def loss_slope(history: pd.DataFrame, *, fraction: float = 0.1, by: Sequence[str] = ("arm", "seed")) -> pd.DataFrame:
    """Per run, the least-squares slope of the per-epoch training loss over the last ``fraction``
    of epochs (at least two), relative to its mean there: per epoch, as a fraction of the loss.
    A converged run's is near 0 (the converged-check of the chapter)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    rows = []
    for key, run in history.groupby(list(by)):
        run = run.sort_values("epoch")
        k = max(2, int(round(fraction * len(run))))
        tail = run.tail(k)
        y = tail["train_loss"].to_numpy(float)
        slope = np.polyfit(tail["epoch"].to_numpy(float), y, 1)[0] / max(abs(y.mean()), 1e-12) \
            if np.isfinite(y).all() else float("nan")
        rows.append(dict(zip(by, key if isinstance(key, tuple) else (key,)), slope=float(slope)))
    return pd.DataFrame(rows)


@torch.no_grad()
def inference_times(nets: Mapping[str, torch.nn.Module], x: torch.Tensor, repeats: int) -> pd.DataFrame:
    """Wall seconds of one evaluation-mode forward pass over ``x``, ``repeats`` times per net.

    The nets take turns pass by pass (after one warm-up pass each), so a change in the
    machine's load touches every net alike; compare medians. Rows: ``net``, ``repeat``, ``seconds``.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive int, got {repeats!r}")
    for net in nets.values():
        net.eval()(x)
    rows = []
    for r in range(repeats):
        for name, net in nets.items():
            start = time.perf_counter()
            net(x)
            rows.append(dict(net=name, repeat=r, seconds=time.perf_counter() - start))
    return pd.DataFrame(rows)
