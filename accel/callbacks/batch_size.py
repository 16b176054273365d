"""Grow the training batch instead of decaying the learning rate.

Smith et al. 2018 ("Don't decay the learning rate, increase the batch size"): SGD's
noise scale is about lr · N / B, so multiplying the batch B by a factor at the epochs
where a step schedule would divide the learning rate by it anneals the noise the same
way, with fewer parameter updates. The callback changes the data module's batch size
between epochs; Lightning must rebuild the loader every epoch, which
``fit(..., reload_dataloaders_every_n_epochs=1)`` asks for.
"""
from __future__ import annotations

from typing import Sequence

import pandas as pd
import pytorch_lightning as pl


def batch_size_at(epoch: int, base: int, milestones: Sequence[int], factor: int) -> int:
    """The batch for 0-based ``epoch``: ``base · factor^(number of milestones <= epoch)``,
    the batch-size twin of ``MultiStepLR(milestones, gamma=1/factor)`` counted in epochs."""
    return int(base * factor ** sum(1 for m in milestones if m <= epoch))


class BatchSizeSchedule(pl.Callback):
    """Multiply the data module's training batch by ``factor`` at each epoch in ``milestones``.

    Records per epoch the batch size used and the optimizer updates taken
    (:meth:`frame`); :attr:`updates` is the run's total. The data module's batch size
    is restored when the fit ends, so one data module can serve several runs.
    """

    def __init__(self, milestones: Sequence[int], factor: int = 2):
        milestones = list(milestones)
        if any(isinstance(m, bool) or not isinstance(m, int) or m < 1 for m in milestones) \
                or milestones != sorted(set(milestones)):
            raise ValueError(f"milestones must be increasing positive epoch numbers, got {milestones!r}")
        if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
            raise ValueError(f"factor must be a positive int, got {factor!r}")
        self.milestones, self.factor = milestones, factor
        self.rows: list[dict[str, int]] = []
        self._base: int | None = None
        self._start_step = 0

    @staticmethod
    def _datamodule(trainer: pl.Trainer):
        dm = trainer.datamodule
        if dm is None or not hasattr(dm, "batch_size"):
            raise ValueError("BatchSizeSchedule needs a data module with a batch_size attribute "
                             "(e.g. accel.data.TensorDataModule) passed to fit")
        return dm

    def _set(self, trainer: pl.Trainer, epoch: int) -> None:
        dm = self._datamodule(trainer)
        size = batch_size_at(epoch, self._base, self.milestones, self.factor)
        if hasattr(dm, "set_batch_size"):
            dm.set_batch_size(size)
        else:
            dm.batch_size = size

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.reload_dataloaders_every_n_epochs != 1:
            raise ValueError("BatchSizeSchedule needs the Trainer option reload_dataloaders_every_n_epochs=1 "
                             f"(got {trainer.reload_dataloaders_every_n_epochs}); the batch would never change")
        self._base = int(self._datamodule(trainer).batch_size)
        self.rows = []
        self._set(trainer, trainer.current_epoch)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start_step = trainer.global_step

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch
        self.rows.append({"epoch": epoch + 1, "batch_size": self._datamodule(trainer).batch_size,
                          "updates": trainer.global_step - self._start_step, "total_updates": trainer.global_step})
        # The next epoch's loader is built before on_train_epoch_start: set its batch now.
        self._set(trainer, epoch + 1)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        dm = self._datamodule(trainer)
        dm.batch_size = self._base

    @property
    def updates(self) -> int:
        """Optimizer updates over the whole run."""
        return self.rows[-1]["total_updates"] if self.rows else 0

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)
