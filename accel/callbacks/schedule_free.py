"""Schedule-Free optimizers evaluate at a different point than they train (Defazio et al. 2024).

Schedule-Free AdamW keeps two sequences: gradients are taken at ``y``, an interpolation
between the averaged iterate ``x`` and the base iterate ``z``, and ``x`` is the point to
evaluate. The `schedulefree` package stores ``y`` in the parameters during training and
swaps in ``x`` on ``optimizer.eval()`` (``optimizer.train()`` swaps back); its ``step``
refuses to run outside train mode. :class:`ScheduleFreeMode` makes those calls at
Lightning's hooks: train mode for training, eval mode for validation, testing and
prediction, and eval mode at the end of fitting, so the trained module holds ``x``. (A
checkpoint saved during training holds ``y``: the package asks for eval mode when saving.)

BatchNorm's running statistics would be those of the ``y`` sequence, not of ``x``; the
authors recompute them at ``x`` before evaluating. That is not implemented here, so a
model with BatchNorm statistics is refused (use a model without BatchNorm, as the book's
chapter on recent methods does).
"""
from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from torch import nn


def schedule_free_optimizers(trainer: pl.Trainer) -> list[Any]:
    """The trainer's optimizers that have Schedule-Free's ``train()``/``eval()`` switch."""
    return [o for o in trainer.optimizers if callable(getattr(o, "eval", None)) and callable(getattr(o, "train", None))]


def set_mode(trainer: pl.Trainer, train: bool) -> None:
    """Put every Schedule-Free optimizer of ``trainer`` in train (``y``) or eval (``x``) mode (idempotent)."""
    for opt in schedule_free_optimizers(trainer):
        opt.train() if train else opt.eval()


class ScheduleFreeMode(pl.Callback):
    """Switch Schedule-Free optimizers to ``eval()`` for evaluation and back to ``train()`` for training."""

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
               for m in pl_module.modules()):
            raise ValueError("ScheduleFreeMode: the model has BatchNorm running statistics, which would have to "
                             "be recomputed at the averaged weights x before evaluation (Defazio et al. 2024); "
                             "that is not implemented: use a model without BatchNorm (norm='none', 'layer', "
                             "'group')")

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        set_mode(trainer, True)

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        set_mode(trainer, False)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.training:   # validation inside fit: training resumes next
            set_mode(trainer, True)

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        set_mode(trainer, False)

    def on_predict_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        set_mode(trainer, False)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        set_mode(trainer, False)   # the trained module holds x, the point Schedule-Free evaluates
