"""Loss-landscape probe along the gradient (Santurkar et al. 2018, "How does batch
normalization help optimization?", §3.1 and Fig. 4).

Every ``every`` optimizer steps, at the current weights ``w`` with gradient ``g`` on the
current batch, the probe visits ``w_c = w − c·η·g`` for each multiplier ``c`` (η the
optimizer's learning rate) and records, on the same batch:

- the loss ``L(w_c)`` — its range over the visited points is the *loss variation*;
- the gradient change ``‖∇L(w_c) − g‖₂`` — small means the gradient is *predictive*;
- ``‖∇L(w_c) − g‖₂ / ‖w_c − w‖₂`` — its maximum is the *effective β-smoothness*
  (a lower bound on the Lipschitz constant of the gradient along that direction).

The probe leaves training untouched: gradients come from ``torch.autograd.grad`` (the
parameters' ``.grad`` are not written) and the weights, buffers (BatchNorm running
statistics, ``num_batches_tracked``) and RNG states are restored afterwards.
"""
from __future__ import annotations

import random
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from .base import Monitor, update_index

LossFn = Callable[[nn.Module, Any], torch.Tensor]


def cross_entropy_loss(module: nn.Module, batch: Any) -> torch.Tensor:
    x, y = batch
    return F.cross_entropy(module(x), y)


@contextmanager
def preserved_state(module: nn.Module) -> Iterator[None]:
    """Restore ``module``'s parameters and buffers and every RNG state on exit."""
    saved = {k: v.detach().clone() for k, v in module.state_dict().items()}
    rng = (random.getstate(), np.random.get_state(), torch.get_rng_state(),
           torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None)
    try:
        yield
    finally:
        with torch.no_grad():
            module.load_state_dict(saved)
        random.setstate(rng[0])
        np.random.set_state(rng[1])
        torch.set_rng_state(rng[2])
        if rng[3] is not None:
            torch.cuda.set_rng_state_all(rng[3])


def _flat(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def _assign(params: Sequence[torch.Tensor], flat: torch.Tensor) -> None:
    """Copy ``flat`` into the parameters in place (their storage and identity stay)."""
    offset = 0
    for p in params:
        p.copy_(flat[offset:offset + p.numel()].view_as(p))
        offset += p.numel()


def probe_landscape(module: nn.Module, batch: Any, lr: float, multipliers: Sequence[float] = (0.5, 1, 2, 4),
                    loss_fn: LossFn = cross_entropy_loss) -> list[dict[str, float]]:
    """One probe: a row per multiplier with its loss, gradient change, step length and ratio."""
    if lr <= 0 or not multipliers or min(multipliers) <= 0:
        raise ValueError(f"lr and multipliers must be positive, got lr={lr}, multipliers={multipliers}")
    params = [p for p in module.parameters() if p.requires_grad]
    rows = []
    with preserved_state(module), torch.enable_grad():
        loss0 = loss_fn(module, batch)
        g0 = _flat(torch.autograd.grad(loss0, params))
        w0 = _flat([p.detach() for p in params]).clone()
        rows.append({"multiplier": 0.0, "loss": float(loss0.detach()), "grad_change": 0.0, "distance": 0.0,
                     "ratio": float("nan")})
        for c in multipliers:
            with torch.no_grad():
                _assign(params, w0 - c * lr * g0)
                distance = float(torch.linalg.vector_norm(_flat([p.detach() for p in params]) - w0))
            loss = loss_fn(module, batch)
            g = _flat(torch.autograd.grad(loss, params))
            change = float(torch.linalg.vector_norm(g - g0))
            rows.append({"multiplier": float(c), "loss": float(loss.detach()), "grad_change": change,
                         "distance": distance, "ratio": change / distance if distance > 0 else float("nan")})
    return rows


def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    """Per probe (step): loss range, largest gradient change, effective β-smoothness."""
    return rows.groupby("step").agg(loss_range=("loss", lambda s: s.max() - s.min()),
                                    grad_change=("grad_change", "max"),
                                    beta=("ratio", "max")).reset_index()


class LandscapeProbe(Monitor):
    """Probe the landscape along the gradient every ``every`` steps (before the step is taken).

    ``lr`` defaults to the first optimizer's current learning rate; ``loss_fn(module, batch)``
    to cross-entropy of ``module(x)`` against ``y``.
    """

    def __init__(self, every: int = 10, multipliers: Sequence[float] = (0.5, 1, 2, 4),
                 lr: float | None = None, loss_fn: LossFn = cross_entropy_loss):
        super().__init__(every)
        self.multipliers, self.lr, self.loss_fn = tuple(multipliers), lr, loss_fn
        self._last_step = -1

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        step = update_index(trainer, after_update=False)
        if not self.due(step) or step == self._last_step:
            return
        self._last_step = step
        lr = self.lr if self.lr is not None else trainer.optimizers[0].param_groups[0]["lr"]
        for row in probe_landscape(pl_module, batch, lr, self.multipliers, self.loss_fn):
            self.record(step, **row)

    def summary(self) -> pd.DataFrame:
        return summarize(self.frame())
