"""Test accuracy at chosen optimizer steps: finer than per-epoch validation, for
steps-to-target measurements (Shallue et al. 2019)."""
from __future__ import annotations

from typing import Any, Iterable

import pandas as pd
import pytorch_lightning as pl
import torch


class AccuracyProbe(pl.Callback):
    """Test accuracy after the optimizer steps listed in ``steps`` (1-based counts of steps
    taken), in eval mode (BatchNorm's running statistics), on tensors ``x``, ``y``."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, steps: Iterable[int], eval_batch: int = 8192):
        self.x, self.y, self.steps = x, y, set(int(s) for s in steps)
        self.eval_batch = eval_batch
        self.rows: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if step not in self.steps:
            return
        was_training = pl_module.training
        pl_module.eval()
        with torch.no_grad():
            x, y = self.x.to(pl_module.device), self.y.to(pl_module.device)
            correct = sum(int((pl_module(x[i:i + self.eval_batch]).argmax(1) == y[i:i + self.eval_batch]).sum())
                          for i in range(0, len(x), self.eval_batch))
        pl_module.train(was_training)
        self.rows.append({"step": step, "acc": correct / len(x)})

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=["step", "acc"])
