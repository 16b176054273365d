"""A callback that tracks the top Hessian eigenvalue (the "sharpness") during training.

Cohen et al. (2021) found that under full-batch gradient descent with step η the
sharpness rises ("progressive sharpening") until it reaches the stability threshold
2/η of GD on a quadratic, then hovers there ("edge of stability"); with heavy-ball
momentum β the threshold is (2 + 2β)/η. This callback records both so a chapter can
plot one against the other.
"""
from __future__ import annotations

from typing import Any, Callable

import pandas as pd
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from .base import Monitor, updates_applied
from ..hessian import top_eigenvalue


class TopHessianEigenvalue(Monitor):
    """Every ``every`` optimizer steps (and before the first), the top Hessian eigenvalue.

    Measured on a fixed ``batch`` (e.g. the full training subset under full-batch GD),
    or on the batch just trained on when ``batch`` is None. Training is not disturbed:
    only ``torch.autograd.grad`` is used (no ``.grad`` written), the model's train/eval
    mode is restored, and the Lanczos start vector has its own seed (the global random
    state is untouched). The Hessian is that of the eval-mode loss (the same function
    for networks without dropout or batch norm).
    """

    columns = ("step", "eigenvalue", "lr", "two_over_lr", "threshold")

    def __init__(self, every: int = 10, batch: tuple[torch.Tensor, torch.Tensor] | None = None,
                 loss_fn: Callable = F.cross_entropy, method: str = "lanczos", tol: float = 1e-3, seed: int = 0):
        super().__init__(every)
        if method not in ("lanczos", "power"):
            raise ValueError(f"unknown method {method!r}; valid: lanczos, power")
        self.batch, self.loss_fn = batch, loss_fn
        self.method, self.tol, self.seed = method, tol, seed

    def _measure(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any) -> None:
        x, y = self.batch if self.batch is not None else batch
        x, y = x.to(pl_module.device), y.to(pl_module.device)
        step = updates_applied(trainer)
        eig = top_eigenvalue(pl_module, self.loss_fn, (x, y), method=self.method, tol=self.tol,
                             seed=self.seed + step)
        group = trainer.optimizers[0].param_groups[0]
        lr, momentum = float(group["lr"]), float(group.get("momentum", 0.0) or 0.0)
        self.record(step, eigenvalue=eig, lr=lr, two_over_lr=2.0 / lr, threshold=(2.0 + 2.0 * momentum) / lr)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if trainer.global_step == 0 and not self.rows:
            self._measure(trainer, pl_module, batch)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        if self.due(updates_applied(trainer)):
            self._measure(trainer, pl_module, batch)


def edge_of_stability(frame: pd.DataFrame, reach: float = 0.9) -> dict[str, float]:
    """Summarize a :class:`TopHessianEigenvalue` record against the threshold 2/lr.

    ``max_ratio``: the largest eigenvalue·lr/2; ``first_step``: the first step where the
    ratio reached ``reach`` (NaN if never); ``ratio_after``: the median ratio from then
    on (NaN if never), the number Cohen et al.'s "hovers at 2/η" is about.
    """
    if frame.empty:
        raise ValueError("no eigenvalue measurements to summarize")
    ratio = frame["eigenvalue"] / frame["two_over_lr"]
    hit = ratio >= reach
    if not hit.any():
        return {"max_ratio": float(ratio.max()), "first_step": float("nan"), "ratio_after": float("nan")}
    first = int(hit.to_numpy().argmax())
    return {"max_ratio": float(ratio.max()), "first_step": float(frame["step"].iloc[first]),
            "ratio_after": float(ratio.iloc[first:].median())}
