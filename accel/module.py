"""One LightningModule for classification whose model, optimizer and schedule are data.

Everything that defines a run is a hyperparameter (``save_hyperparameters``), so a
checkpoint rebuilds it. Metrics are kept per step as the few tensors they need and
reduced and logged once per epoch: per-step ``self.log`` calls, and even a handful of
tiny tensor operations, cost more than a small model's step.

The module also trains a stacked seed ensemble (:class:`accel.ensemble.StackedEnsemble`
as its net): batches are then ``(K, B, ...)``, the loss is the sum of the K members'
losses, and every metric is kept per member (``member_metrics``).
"""
from __future__ import annotations

import inspect
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from .ensemble import check_clipping, check_elementwise
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
        # K for a stacked seed ensemble, 0 for one network.
        self.members = int(getattr(self.net, "num_members", 0))
        self.member_metrics: dict[str, torch.Tensor] = {}
        self._reset_sums("train")
        self._reset_sums("val")

    def __setattr__(self, name: str, value: Any) -> None:
        # Lightning sets `_current_fx_name` twice around every hook call (~40 times a step);
        # nn.Module.__setattr__'s parameter/buffer/module checks made that a tenth of a small
        # model's step. A str or None is stored exactly where nn.Module would store it.
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _reset_sums(self, stage: str) -> None:
        setattr(self, f"_{stage}_parts", [])

    def _accumulate(self, stage: str, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        """Keep this batch's loss and hits; :meth:`_log_epoch` reduces them once per epoch."""
        getattr(self, f"_{stage}_parts").append((loss.detach(), logits.argmax(-1) == y))

    def _losses(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each member's loss, shape (K,): member k's logits against its own labels (training)
        or the shared labels (evaluation)."""
        if self.loss_fn is F.cross_entropy:  # one flat call: vmap runs it as a slow decomposition
            y = y.expand(logits.shape[:2])
            return F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(y.shape).mean(1)
        return torch.vmap(self.loss_fn, in_dims=(0, 0 if y.ndim == 2 else None))(logits, y)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        if self.members:
            logits = self.net(x, stacked=True)
            losses = self._losses(logits, y)
            self._accumulate("train", losses, logits, y)
            return losses.sum()  # member k's gradient is that of its own loss
        logits = self(x)
        loss = self.loss_fn(logits, y)
        self._accumulate("train", loss, logits, y)
        return loss

    # Lightning inspects training_step's signature before every step (does it take
    # batch_idx?); a stored signature spares it rebuilding one.
    training_step.__signature__ = inspect.signature(training_step)  # type: ignore[attr-defined]

    def backward(self, loss: torch.Tensor, *args: Any, **kwargs: Any) -> None:
        if needs_create_graph(self.optimizer_spec.get("name")):
            kwargs.setdefault("create_graph", True)
        super().backward(loss, *args, **kwargs)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        loss = self._losses(logits, y) if self.members else self.loss_fn(logits, y)
        self._accumulate("val", loss, logits, y)

    def _log_epoch(self, stage: str) -> None:
        parts = getattr(self, f"_{stage}_parts")
        if parts:
            # The same float32 operations, in the same order, as summing loss · batch size
            # after every step; counts of hits are integers, exact in any order.
            loss_sum = torch.zeros(self.members or (), device=parts[0][0].device)
            n = 0
            for loss, hits in parts:
                loss_sum = loss_sum + loss * hits.shape[-1]
                n += hits.shape[-1]
            correct = torch.cat([hits for _, hits in parts], dim=-1).sum(-1)
            mean_loss, acc = loss_sum / n, correct.float() / n
            if self.members:
                self.member_metrics[f"{stage}_loss"], self.member_metrics[f"{stage}_acc"] = mean_loss, acc
                mean_loss, acc = mean_loss.mean(), acc.mean()
            self.log(f"{stage}_loss", mean_loss, sync_dist=True)
            self.log(f"{stage}_acc", acc, sync_dist=True)
        self._reset_sums(stage)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # Log on the epoch's last batch, not in on_train_epoch_end: callbacks' epoch-end
        # hooks run before the module's, and would see last epoch's numbers.
        if self.trainer.is_last_batch:
            self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def configure_gradient_clipping(self, optimizer: torch.optim.Optimizer, gradient_clip_val: float | None = None,
                                    gradient_clip_algorithm: Any = None) -> None:
        if not gradient_clip_val:
            return  # nothing to clip: skip Lightning's argument checks on every step
        if self.members:
            check_clipping(gradient_clip_val, gradient_clip_algorithm)
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def configure_optimizers(self) -> Any:
        if self.members:
            check_elementwise(self.optimizer_spec.get("name"))
        opt = make_optimizer(self.net, self.optimizer_spec)
        if self.schedule_spec is None:
            return opt
        total = self.total_steps or int(self.trainer.estimated_stepping_batches)
        scheduler = make_schedule(opt, self.schedule_spec, total)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
