"""Test accuracy at chosen optimizer steps: finer than per-epoch validation, for
steps-to-target measurements (Shallue et al. 2019)."""
from __future__ import annotations

from typing import Any, Iterable

import pytorch_lightning as pl
import torch

from .base import Monitor, updates_applied


class AccuracyProbe(Monitor):
    """Test accuracy of the weights after the numbers of updates listed in ``steps``, in eval
    mode (BatchNorm's running statistics), on tensors ``x``, ``y``."""

    columns = ("step", "acc")

    def __init__(self, x: torch.Tensor, y: torch.Tensor, steps: Iterable[int], eval_batch: int = 8192):
        super().__init__()
        self.x, self.y, self.steps = x, y, set(int(s) for s in steps)
        self.eval_batch = eval_batch

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        step = updates_applied(trainer)
        if step not in self.steps:
            return
        was_training = pl_module.training
        pl_module.eval()
        with torch.no_grad():
            x, y = self.x.to(pl_module.device), self.y.to(pl_module.device)
            correct = sum(int((pl_module(x[i:i + self.eval_batch]).argmax(1) == y[i:i + self.eval_batch]).sum())
                          for i in range(0, len(x), self.eval_batch))
        pl_module.train(was_training)
        self.record(step, acc=correct / len(x))
