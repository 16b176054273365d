"""Per-parameter step sizes over training: what an optimizer actually did to each tensor.

Two numbers per parameter tensor and step:

- ``delta``: mean |Δθ| over the tensor's elements, the raw step;
- ``ratio``: median over elements of |Δθ| / (lr·|g|), the *effective learning-rate
  multiplier*. For an optimizer without momentum whose update is a diagonal rescaling
  of the current gradient (SGD, AdaGrad, RMSProp) this is exactly the preconditioner,
  e.g. 1/(√(Σg²) + ε) for AdaGrad (Duchi et al. 2011), free of the noise in |g|; that is
  what the AdaGrad-vs-RMSProp claims are about. With momentum (SGD+momentum, Adam)
  Δθ is not proportional to the current g and the ratio mixes in the gradient history,
  so read ``delta`` there. The median keeps elements with g ≈ 0 from dominating.

``StepSizeMonitor`` is a Lightning callback; :func:`step_sizes` is the same measurement
for a plain loop (e.g. :func:`accel.trajectory.minimize`'s ``on_step``).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from .base import Monitor, update_index


def step_sizes(before: torch.Tensor, after: torch.Tensor, grad: torch.Tensor, lr: float,
               tiny: float = 1e-30) -> dict[str, float]:
    """``delta`` = mean |after − before|; ``ratio`` = median |Δθ|/(lr·|g|) over elements with |g| > tiny."""
    if lr <= 0:
        raise ValueError(f"lr must be positive, got {lr}")
    delta = (after.detach() - before.detach()).abs().flatten().double()
    g = grad.detach().abs().flatten().double()
    mask = g > tiny
    ratio = float(np.median((delta[mask] / (lr * g[mask])).numpy())) if bool(mask.any()) else float("nan")
    return {"delta": float(delta.mean()), "ratio": ratio}


class StepSizeMonitor(Monitor):
    """Rows ``step, param, lr, delta, ratio`` every ``every`` optimizer steps.

    Copies each parameter and its gradient just before ``optimizer.step()`` and compares
    after the batch ends. ``params`` restricts it to named parameters (all by default).
    Update ``s`` is recorded as ``step = s`` (:mod:`accel.callbacks.base`).
    """

    columns = ("step", "param", "lr", "delta", "ratio")

    def __init__(self, every: int = 1, params: list[str] | None = None) -> None:
        super().__init__(every)
        self.params = params
        self._pending: dict[str, tuple[torch.Tensor, torch.Tensor, float]] = {}

    def _selected(self, pl_module: pl.LightningModule) -> list[tuple[str, torch.nn.Parameter]]:
        named = [(n, p) for n, p in pl_module.named_parameters() if p.requires_grad]
        if self.params is None:
            return named
        unknown = sorted(set(self.params) - {n for n, _ in named})
        if unknown:
            raise ValueError(f"unknown parameters {unknown}; valid: {', '.join(n for n, _ in named)}")
        return [(n, p) for n, p in named if n in self.params]

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        self._pending = {}
        if not self.due(update_index(trainer, after_update=False)):
            return
        lrs = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
        for name, p in self._selected(pl_module):
            if p.grad is not None and id(p) in lrs:
                self._pending[name] = (p.detach().clone(), p.grad.detach().clone(), float(lrs[id(p)]))

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        if not self._pending:
            return
        params = dict(pl_module.named_parameters())
        for name, (before, grad, lr) in self._pending.items():
            self.record(update_index(trainer, after_update=True), param=name, lr=lr,
                        **step_sizes(before, params[name], grad, lr))
        self._pending = {}
