"""Gradient norms: per layer every N steps, and the total norm before and after clipping.

In Lightning 2.x the precision plugin calls ``on_before_optimizer_step`` (callbacks,
then the module) and only *then* ``configure_gradient_clipping``
(``Precision._after_closure``), so gradients read in that hook are the unclipped ones.
Gradients are zeroed at the start of the next step's closure, so ``on_train_batch_end``
still sees them as the optimizer used them, after clipping. Comparing the two norms
says whether clipping acted, whatever did the clipping (Lightning's
``gradient_clip_val``, or a callback such as :class:`~accel.callbacks.agc.AdaptiveGradientClipping`
listed *after* this monitor).
"""
from __future__ import annotations

from typing import Any

import pandas as pd
import pytorch_lightning as pl
import torch
from torch import nn

from .base import Monitor, update_index

LAYER_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d)


def total_grad_norm(parameters: Any, norm_type: float = 2.0) -> float:
    """The norm of all gradients as one vector (what ``clip_grad_norm_`` compares to its threshold)."""
    grads = [p.grad.detach() for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    return float(torch.nn.utils.get_total_norm(grads, norm_type))


def layer_grad_norms(model: nn.Module, layer_types: tuple[type[nn.Module], ...] = LAYER_TYPES) -> pd.DataFrame:
    """One row per weighted layer, input to output: ``layer`` (1-based), ``name``,
    ``grad_norm`` = ‖∂L/∂W‖_F and ``weight_norm`` = ‖W‖_F. Call after ``backward``."""
    rows = []
    for name, m in model.named_modules():
        if isinstance(m, layer_types) and m.weight.grad is not None:
            rows.append({"layer": len(rows) + 1, "name": name,
                         "grad_norm": float(m.weight.grad.detach().norm()),
                         "weight_norm": float(m.weight.detach().norm())})
    return pd.DataFrame(rows, columns=["layer", "name", "grad_norm", "weight_norm"])


class GradNormMonitor(Monitor):
    """Record per-layer gradient norms every ``every`` steps and total norms every step.

    ``layers`` rows: step, layer, name, grad_norm, weight_norm (pre-clipping).
    ``steps`` rows: step, norm_before, norm_after, clipped (norm_after < norm_before
    by more than ``rtol``).
    """

    def __init__(self, every: int = 10, layer_types: tuple[type[nn.Module], ...] = LAYER_TYPES,
                 rtol: float = 1e-4):
        super().__init__(every)
        self.layer_types, self.rtol = layer_types, rtol
        self.step_rows: list[dict[str, Any]] = []
        self._before: float | None = None

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        step = update_index(trainer, after_update=False)
        self._before = total_grad_norm(pl_module.parameters())
        if self.due(step):
            self.record_table(step, layer_grad_norms(pl_module, self.layer_types))

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        if self._before is None:  # no optimizer step this batch (e.g. gradient accumulation)
            return
        after = total_grad_norm(pl_module.parameters())
        before = self._before
        self.step_rows.append({"step": update_index(trainer, after_update=True), "norm_before": before,
                               "norm_after": after,
                               "clipped": bool(after < before * (1 - self.rtol))})
        self._before = None

    columns = ("step", "layer", "name", "grad_norm", "weight_norm")

    @property
    def layers(self) -> pd.DataFrame:
        return self.frame()

    @property
    def steps(self) -> pd.DataFrame:
        return pd.DataFrame(self.step_rows, columns=["step", "norm_before", "norm_after", "clipped"])

    def clipped_fraction(self) -> float:
        """Fraction of optimizer steps on which clipping reduced the gradient norm."""
        return float(self.steps["clipped"].mean()) if self.step_rows else float("nan")

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "step_rows": list(self.step_rows)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.step_rows = list(state_dict.get("step_rows", []))
