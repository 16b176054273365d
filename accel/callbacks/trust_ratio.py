"""Layer-wise trust ratios: the quantity LARS and LAMB adapt the learning rate to.

You et al. 2017 (LARS) observed that at large batch the ratio ‖w‖/‖∇w‖ differs by
orders of magnitude between layers, so one global learning rate is too large for some
layers and too small for others. LARS gives each layer the local learning rate

    λ = η ‖w‖ / (‖∇L(w)‖ + β ‖w‖)        (η: trust coefficient, β: weight decay),

and a step of γ·λ·(∇L + βw), so that ‖Δw‖/‖w‖ ≈ γη whatever the layer's gradient scale.
This monitor records, per parameter tensor of a layer (ndim >= ``min_ndim``; LARS leaves
biases and norm parameters alone), ‖w‖, ‖∇w‖, their ratio and that local rate.

Gradients are read in ``on_before_optimizer_step``: after ``backward`` and before any
gradient clipping (Lightning 2.x calls this hook first), i.e. the gradient LARS sees.
"""
from __future__ import annotations


import pandas as pd
import pytorch_lightning as pl
import torch
from torch import nn

from .base import Monitor, update_index

COLUMNS = ["step", "layer", "name", "shape", "weight_norm", "grad_norm", "ratio", "lars_lr", "lr"]


def lars_local_lr(weight_norm: float, grad_norm: float, trust_coefficient: float = 1e-3,
                  weight_decay: float = 0.0) -> float:
    """λ = η‖w‖/(‖∇w‖ + β‖w‖) (You et al. 2017, eq. 6); 1 where it is undefined (‖w‖ = 0 or
    a zero denominator), as in ``pytorch_optimizer.LARS``."""
    denominator = grad_norm + weight_decay * weight_norm
    if weight_norm <= 0.0 or denominator <= 0.0:
        return 1.0
    return trust_coefficient * weight_norm / denominator


def trust_ratio_table(model: nn.Module, optimizer: torch.optim.Optimizer | None = None, *,
                      trust_coefficient: float = 1e-3, weight_decay: float = 0.0,
                      min_ndim: int = 2) -> pd.DataFrame:
    """One row per parameter with a gradient and ndim >= ``min_ndim``, input to output:
    ``layer`` (1-based), ``name``, ``shape``, ``weight_norm``, ``grad_norm``, ``ratio`` =
    ‖w‖/‖∇w‖ (inf for a zero gradient), ``lars_lr`` (see :func:`lars_local_lr`) and ``lr``,
    the global rate γ of the parameter's group. Call after ``backward``.

    η and β come from the parameter's optimizer group when it is a LARS group (it has
    ``trust_coefficient``), else from the arguments: the column then says what LARS
    *would* do for the gradients of any optimizer.
    """
    groups = {id(p): g for g in optimizer.param_groups for p in g["params"]} if optimizer else {}
    rows = []
    for name, p in model.named_parameters():
        if p.grad is None or p.ndim < min_ndim:
            continue
        group = groups.get(id(p), {})
        lars = "trust_coefficient" in group
        eta = group["trust_coefficient"] if lars else trust_coefficient
        beta = group.get("weight_decay", 0.0) if lars else weight_decay
        w, g = float(p.detach().norm()), float(p.grad.detach().norm())
        rows.append({"layer": len(rows) + 1, "name": name, "shape": tuple(p.shape),
                     "weight_norm": w, "grad_norm": g, "ratio": w / g if g > 0 else float("inf"),
                     "lars_lr": lars_local_lr(w, g, eta, beta), "lr": float(group.get("lr", float("nan")))})
    return pd.DataFrame(rows, columns=COLUMNS[1:])


class TrustRatioMonitor(Monitor):
    """Every ``every`` optimizer steps, record per layer ‖w‖, ‖∇w‖, ‖w‖/‖∇w‖ and the LARS
    local learning rate η‖w‖/(‖∇w‖ + β‖w‖) (rows of :func:`trust_ratio_table` plus ``step``).

    ``trust_coefficient``/``weight_decay`` are used for optimizers that are not LARS;
    ``lr`` is the group's current global rate γ (LARS steps by γ·λ). ``frame()`` returns the rows.
    """

    columns = COLUMNS

    def __init__(self, every: int = 10, trust_coefficient: float = 1e-3, weight_decay: float = 0.0,
                 min_ndim: int = 2):
        super().__init__(every)
        if trust_coefficient <= 0 or weight_decay < 0:
            raise ValueError(f"trust_coefficient must be > 0 and weight_decay >= 0, "
                             f"got {trust_coefficient!r} and {weight_decay!r}")
        self.min_ndim = min_ndim
        self.trust_coefficient, self.weight_decay = trust_coefficient, weight_decay

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        step = update_index(trainer, after_update=False)
        if not self.due(step):
            return
        table = trust_ratio_table(pl_module, optimizer, trust_coefficient=self.trust_coefficient,
                                  weight_decay=self.weight_decay, min_ndim=self.min_ndim)
        self.record_table(step, table)
