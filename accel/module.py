"""One LightningModule for classification whose model, optimizer and schedule are data.

Everything that defines a run is a hyperparameter (``save_hyperparameters``), so a
checkpoint rebuilds it. Metrics are accumulated as tensors and logged once per epoch:
per-step ``self.log`` calls cost more than a small model's step.
"""
from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from .losses import get_loss
from .models import build_model
from .optim import make_optimizer, needs_create_graph
from .schedules import make_schedule


class Classifier(pl.LightningModule):
    def __init__(self, model: dict[str, Any] | nn.Module, optimizer: dict[str, Any],
                 schedule: dict[str, Any] | None = None, total_steps: int | None = None,
                 loss: str = "cross_entropy"):
        super().__init__()
        if isinstance(model, nn.Module):
            self.save_hyperparameters(ignore=["model"])
            self.net = model
        else:
            self.save_hyperparameters()
            self.net = build_model(model)
        self.optimizer_spec = dict(optimizer)
        self.schedule_spec = schedule
        self.total_steps = total_steps
        self.loss_fn = get_loss(loss)
        self._reset_sums("train")
        self._reset_sums("val")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _reset_sums(self, stage: str) -> None:
        setattr(self, f"_{stage}_sums", [torch.zeros(()), torch.zeros(()), 0])

    def _accumulate(self, stage: str, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        sums = getattr(self, f"_{stage}_sums")
        n = len(y)
        sums[0] = sums[0].to(loss.device) + loss.detach() * n
        sums[1] = sums[1].to(loss.device) + (logits.detach().argmax(1) == y).sum()
        sums[2] += n

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = self.loss_fn(logits, y)
        self._accumulate("train", loss, logits, y)
        return loss

    def backward(self, loss: torch.Tensor, *args: Any, **kwargs: Any) -> None:
        if needs_create_graph(self.optimizer_spec.get("name")):
            kwargs.setdefault("create_graph", True)
        super().backward(loss, *args, **kwargs)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self._accumulate("val", self.loss_fn(logits, y), logits, y)

    def _log_epoch(self, stage: str) -> None:
        loss_sum, correct, n = getattr(self, f"_{stage}_sums")
        if n:
            self.log(f"{stage}_loss", loss_sum / n, sync_dist=True)
            self.log(f"{stage}_acc", correct.float() / n, sync_dist=True)
        self._reset_sums(stage)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # Log on the epoch's last batch, not in on_train_epoch_end: callbacks' epoch-end
        # hooks run before the module's, and would see last epoch's numbers.
        if self.trainer.is_last_batch:
            self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def configure_optimizers(self) -> Any:
        opt = make_optimizer(self.net, self.optimizer_spec)
        if self.schedule_spec is None:
            return opt
        total = self.total_steps or int(self.trainer.estimated_stepping_batches)
        scheduler = make_schedule(opt, self.schedule_spec, total)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
