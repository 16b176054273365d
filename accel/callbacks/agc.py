"""Adaptive gradient clipping (Brock et al. 2021, "High-performance large-scale image
recognition without normalization", Sec. 4.1).

Unit-wise: for each output unit i of a weight W (row i of a Linear weight, filter i of
a convolution; the whole tensor for a bias or gain),

    G_i ← λ · max(‖W_i‖, ε) / ‖G_i‖ · G_i    if ‖G_i‖ / max(‖W_i‖, ε) > λ,

with Frobenius norms, clipping threshold λ and ε = 10⁻³ (so zero-initialized weights
can still move). The paper does not clip the final linear layer.

`pytorch_optimizer.optimizer.agc.agc` implements this rule, with ``unit_norm`` taking
norms over dim 1 of 2-D and 3-D tensors and over dims 1-3 of 4-D ones. For a Conv1d
weight (out, in, k) dim 1 alone is not the unit norm, so every tensor is viewed as
(units, -1) first, which makes dim 1 the unit for any layer type.
"""
from __future__ import annotations

from typing import Any, Iterable

import pytorch_lightning as pl
import torch
from pytorch_optimizer.optimizer.agc import agc
from torch import nn


def unitwise_clip(param: torch.Tensor, grad: torch.Tensor, clipping: float = 0.01, eps: float = 1e-3) -> torch.Tensor:
    """The AGC-clipped gradient of ``param`` (a new tensor; ``grad`` is unchanged)."""
    if not clipping > 0:
        raise ValueError(f"clipping (λ) must be positive, got {clipping}")
    if param.ndim >= 2:
        out = agc(param.reshape(len(param), -1), grad.reshape(len(grad), -1), agc_eps=eps, agc_clip_val=clipping)
        return out.reshape(grad.shape)
    return agc(param, grad, agc_eps=eps, agc_clip_val=clipping)


def clip_parameters(params: Iterable[torch.Tensor], clipping: float = 0.01, eps: float = 1e-3) -> int:
    """Clip every parameter's ``.grad`` in place; return how many parameters were changed."""
    changed = 0
    with torch.no_grad():
        for p in params:
            if p.grad is None:
                continue
            clipped = unitwise_clip(p, p.grad, clipping, eps)
            if not torch.equal(clipped, p.grad):
                changed += 1
                p.grad.copy_(clipped)
    return changed


def head_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters of the last Linear layer (the classifier head AGC leaves alone)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return list(linears[-1].parameters()) if linears else []


class AdaptiveGradientClipping(pl.Callback):
    """Apply AGC in ``on_before_optimizer_step`` (before Lightning's own norm clipping).

    ``skip_head`` leaves the last Linear layer unclipped, as the paper does.
    ``clipped_steps`` counts steps on which at least one tensor was clipped.
    """

    def __init__(self, clipping: float = 0.01, eps: float = 1e-3, skip_head: bool = True):
        if not clipping > 0:
            raise ValueError(f"clipping (λ) must be positive, got {clipping}")
        if not eps > 0:
            raise ValueError(f"eps must be positive, got {eps}")
        self.clipping, self.eps, self.skip_head = clipping, eps, skip_head
        self.steps = 0
        self.clipped_steps = 0

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        skip = {id(p) for p in head_parameters(pl_module)} if self.skip_head else set()
        params = [p for p in pl_module.parameters() if id(p) not in skip]
        changed = clip_parameters(params, self.clipping, self.eps)
        self.steps += 1
        self.clipped_steps += changed > 0

    def clipped_fraction(self) -> float:
        return self.clipped_steps / self.steps if self.steps else float("nan")

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "clipped_steps": self.clipped_steps}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.steps, self.clipped_steps = state_dict["steps"], state_dict["clipped_steps"]
