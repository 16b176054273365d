"""The loss landscape along the gradient at fixed distances (Santurkar et al. 2018, §3.1, Fig. 4).

Santurkar et al. move from the weights ``w`` along the gradient ``g`` and record how much
the loss and the gradient change. Stepping ``c·η·g`` (multiples of the learning rate, as
:class:`accel.callbacks.LandscapeProbe` does) makes the distance travelled depend on the
gradient's scale, which differs between a network with BatchNorm and one without: the
network with the smaller gradient is probed closer to its weights and looks smoother for
that reason alone. Here both are probed at the *same distances* ``d`` along the unit
gradient direction ``u = g/‖g‖``, and every quantity is divided by the distance:

- ``loss_lipschitz = max_d |L(w − d·u) − L(w)| / d``, the largest mean rate of change of
  the loss along the gradient direction (Santurkar et al.'s "Lipschitzness of the loss");
- ``beta = max_d ‖∇L(w − d·u) − g‖ / d``, the effective β-smoothness (their "β-smoothness",
  a lower bound on the Lipschitz constant of the gradient along that direction).

The probe leaves training untouched: gradients come from ``torch.autograd.grad`` and the
parameters, buffers (BatchNorm's running statistics) and RNG states are restored afterwards
(:func:`accel.callbacks.landscape.preserved_state`).
"""
from __future__ import annotations

from typing import Any, Sequence

import pandas as pd
import pytorch_lightning as pl
import torch
from torch import nn

from ..callbacks.base import Monitor, update_index
from ..callbacks.landscape import LossFn, cross_entropy_loss, preserved_state


def _set(params: Sequence[torch.Tensor], flat: torch.Tensor) -> None:
    """Copy ``flat`` into ``params`` in place (their identity, hence the optimizer's state, stays)."""
    with torch.no_grad():
        for p, chunk in zip(params, torch.split(flat, [p.numel() for p in params])):
            p.copy_(chunk.view_as(p))


def probe_at_distances(module: nn.Module, batch: Any, distances: Sequence[float] = (0.05, 0.1, 0.2, 0.4),
                       loss_fn: LossFn = cross_entropy_loss) -> list[dict[str, float]]:
    """One probe on ``batch``: a row per distance with the loss, the gradient change and both ratios."""
    if not distances or min(distances) <= 0:
        raise ValueError(f"distances must be positive, got {distances!r}")
    params = [p for p in module.parameters() if p.requires_grad]
    rows = []
    with preserved_state(module), torch.enable_grad():
        loss0 = loss_fn(module, batch)
        g0 = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss0, params)])
        w0 = torch.cat([p.detach().reshape(-1) for p in params]).clone()
        norm = float(torch.linalg.vector_norm(g0))
        if norm == 0 or not torch.isfinite(g0).all():
            return []
        u = g0 / norm
        for d in distances:
            _set(params, w0 - d * u)
            loss = loss_fn(module, batch)
            g = torch.cat([x.reshape(-1) for x in torch.autograd.grad(loss, params)])
            change = float(torch.linalg.vector_norm(g - g0))
            rows.append({"distance": float(d), "loss": float(loss.detach()), "loss0": float(loss0.detach()),
                         "grad_norm": norm, "grad_change": change,
                         "loss_slope": abs(float(loss.detach()) - float(loss0.detach())) / d,
                         "ratio": change / d})
    return rows


def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    """Per probe (step): the gradient norm, ``loss_lipschitz`` and ``beta`` (maxima over distances)."""
    return rows.groupby("step").agg(grad_norm=("grad_norm", "first"), loss_lipschitz=("loss_slope", "max"),
                                    beta=("ratio", "max")).reset_index()


class DistanceProbe(Monitor):
    """:func:`probe_at_distances` on the current batch every ``every`` steps, before the step,
    for the first ``until`` steps (None: the whole run)."""

    def __init__(self, every: int = 10, distances: Sequence[float] = (0.05, 0.1, 0.2, 0.4),
                 until: int | None = None, loss_fn: LossFn = cross_entropy_loss):
        super().__init__(every)
        self.distances, self.until, self.loss_fn = tuple(distances), until, loss_fn
        self._last_step = -1

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        step = update_index(trainer, after_update=False)
        if not self.due(step) or step == self._last_step or (self.until is not None and step >= self.until):
            return
        self._last_step = step
        for row in probe_at_distances(pl_module, batch, self.distances, self.loss_fn):
            self.record(step, **row)

    def summary(self) -> pd.DataFrame:
        return summarize(self.frame()) if self.rows else pd.DataFrame(
            columns=["step", "grad_norm", "loss_lipschitz", "beta"])
