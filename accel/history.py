"""A callback that keeps every epoch's logged metrics as rows of a table."""
from __future__ import annotations

import math

import pandas as pd
import pytorch_lightning as pl


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
