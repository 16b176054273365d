"""Dead units: the fraction of units that are inactive for every sample of a probe batch.

A ReLU unit whose pre-activation is ≤ 0 on every input outputs 0 everywhere and gets
no gradient, so no update can revive it: it is dead (Lu et al. 2020). Forward hooks on
the activation modules read their inputs on a fixed probe batch; a unit (a feature, or
a channel of a convolution, pooled over positions) counts as inactive when its
pre-activation is ≤ 0 for every sample (for ReLU: its output is 0 for every sample).
The same count for leaky ReLU/ELU/GELU measures units in their negative regime, which
still pass a gradient there and can come back.

The opposite end is what a positive initial bias is for: Goodfellow et al. (2016,
§6.3.1) set ReLU biases to 0.1 so that units are "initially active for most inputs".
``mostly_active`` is the fraction of units active (pre-activation > 0) on more than
half of the probe's samples.
"""
from __future__ import annotations

from typing import Any

import pandas as pd
import pytorch_lightning as pl
import torch
from torch import nn

from .base import Monitor, updates_applied

ACTIVATION_TYPES: tuple[type[nn.Module], ...] = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU)


def inactive_fraction(pre_activation: torch.Tensor) -> float:
    """Fraction of units (dim 1) whose value is ≤ 0 for every sample (dim 0) and position."""
    if pre_activation.ndim < 2:
        raise ValueError(f"expected (batch, units, ...) activations, got shape {tuple(pre_activation.shape)}")
    x = pre_activation.detach().transpose(0, 1).reshape(pre_activation.shape[1], -1)
    return float((x <= 0).all(dim=1).float().mean())


def mostly_active_fraction(pre_activation: torch.Tensor) -> float:
    """Fraction of units (dim 1) whose value is > 0 on more than half of the samples (and positions)."""
    if pre_activation.ndim < 2:
        raise ValueError(f"expected (batch, units, ...) activations, got shape {tuple(pre_activation.shape)}")
    x = pre_activation.detach().transpose(0, 1).reshape(pre_activation.shape[1], -1)
    return float(((x > 0).float().mean(dim=1) > 0.5).float().mean())


def dead_fractions(model: nn.Module, x: torch.Tensor,
                   activation_types: tuple[type[nn.Module], ...] = ACTIVATION_TYPES) -> pd.DataFrame:
    """One row per activation module (input to output): layer, name, dead (the inactive fraction
    on ``x``) and mostly_active (:func:`mostly_active_fraction`)."""
    names = [(n, m) for n, m in model.named_modules() if isinstance(m, activation_types)]
    captured: dict[str, torch.Tensor] = {}
    handles = [m.register_forward_hook(lambda mod, inp, out, n=n: captured.__setitem__(n, inp[0]))
               for n, m in names]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    rows = [{"layer": i + 1, "name": n, "dead": inactive_fraction(captured[n]),
             "mostly_active": mostly_active_fraction(captured[n])}
            for i, (n, _) in enumerate(names) if n in captured]
    return pd.DataFrame(rows, columns=["layer", "name", "dead", "mostly_active"])


class DeadUnitMonitor(Monitor):
    """Every ``every`` steps (and before the first), the dead fraction per layer on ``probe``.

    ``probe`` is a fixed input batch (e.g. the first 512 training samples), moved to the
    module's device. Rows: step, layer, name, dead, mostly_active.
    """

    columns = ("step", "layer", "name", "dead", "mostly_active")

    def __init__(self, probe: torch.Tensor, every: int = 20,
                 activation_types: tuple[type[nn.Module], ...] = ACTIVATION_TYPES):
        super().__init__(every)
        self.probe, self.activation_types = probe, activation_types

    def _measure(self, step: int, pl_module: pl.LightningModule) -> None:
        table = dead_fractions(pl_module, self.probe.to(pl_module.device), self.activation_types)
        self.record_table(step, table)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._measure(updates_applied(trainer), pl_module)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        if self.due(updates_applied(trainer)):
            self._measure(updates_applied(trainer), pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.rows or self.rows[-1]["step"] != updates_applied(trainer):
            self._measure(updates_applied(trainer), pl_module)

    def final(self) -> pd.DataFrame:
        """The last measurement, one row per layer."""
        df = self.frame()
        return df[df.step == df.step.max()].reset_index(drop=True)

    def overall(self) -> pd.DataFrame:
        """Mean dead fraction over layers at each measured step (layers weighted equally)."""
        return self.frame().groupby("step", as_index=False)["dead"].mean()
