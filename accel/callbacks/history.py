"""A callback that keeps every epoch's logged metrics as rows of a table."""
from __future__ import annotations

import math

import pandas as pd
import pytorch_lightning as pl

from .base import Monitor, update_index


class History(pl.Callback):
    """Rows of ``epoch, step, <metric>...`` taken from ``trainer.callback_metrics`` each epoch."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        row = {"epoch": trainer.current_epoch + 1, "step": trainer.global_step}
        for k, v in trainer.callback_metrics.items():
            value = float(v)
            row[k] = value if math.isfinite(value) else float("nan")
        self.rows.append(row)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)


class StepHistory(Monitor):
    """Training loss and learning rate of update ``step`` every ``every`` updates, for curves
    finer than epochs (``step`` as in :mod:`accel.callbacks.base`: the loss of the batch
    and the rate that update ``s`` used carry ``step = s``).

    Reads the loss a ``training_step`` returned (a tensor or a dict with ``"loss"``);
    a non-finite loss is recorded as NaN/inf so divergence shows up in the curve.
    """

    columns = ("step", "epoch", "loss", "lr")

    def __init__(self, every: int = 1) -> None:
        super().__init__(every)
        self._lr = float("nan")

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        self._lr = float(trainer.optimizers[0].param_groups[0]["lr"]) if trainer.optimizers else float("nan")

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        step = update_index(trainer, after_update=True)
        if not self.due(step):
            return
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.record(step, epoch=trainer.current_epoch + 1,
                    loss=float(loss) if loss is not None else float("nan"), lr=self._lr)
