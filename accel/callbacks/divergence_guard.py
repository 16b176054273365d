"""Roll back to the last good state with a lower learning rate when the loss diverges.

The remedy large runs use by hand: the OPT-175B logbook (Zhang et al. 2022) records
loss divergences fixed by restarting from an earlier checkpoint with a lower learning
rate. :class:`DivergenceGuard` automates it inside one Lightning run:

* **spike rule**: a step's training loss is a spike when it is non-finite, or when it
  exceeds ``factor`` × the median (``rule="median"``) or the exponential moving average
  (``rule="ema"``) of the last ``window`` healthy losses (once ``min_history`` are known);
* **snapshots**: every ``snapshot_every`` healthy steps the model, optimizer and
  scheduler states are copied in memory. A snapshot becomes the *good* one only after
  another ``snapshot_every`` healthy steps have followed it (the update that breaks a
  run is applied before its loss is seen, so an unconfirmed snapshot may already be
  broken). The run's initial state is good. With ``path`` the good snapshot is also
  written to disk atomically (temporary file + ``os.replace``);
* **intervention**: restore the good snapshot, multiply the learning rate by
  ``lr_factor`` (every parameter group, and the schedulers' ``base_lrs`` so a scheduler
  cannot undo it), continue, and record a ``"rollback"`` row;
* **restoring the rate** (``restore_after=n``, off by default): after ``n`` healthy
  steps in a row since the last change of rate, divide the scale back by ``lr_factor``
  (never above the planned rate) and record a ``"raise lr"`` row. OPT kept the lowered
  rate; a short run pays for that in progress, which this option buys back;
* after ``max_retries`` rollbacks the next spike raises :class:`DivergenceError`.

Steps follow :mod:`accel.callbacks.base`: the loss of update ``s`` is computed from the
weights ``w_s``, so a rollback triggered by that loss carries ``step = s``; a snapshot
holds weights after ``k`` updates and carries ``k`` (``restored_step``). The first loss
a spiked update ``s`` can corrupt is that of update ``s + 1``: the smallest possible
detection delay is one step.

Its rows (the interventions), counters and loss window are saved in Lightning
checkpoints (``state_dict``/``load_state_dict``). The trainer's step counter is not
rewound: the run still takes its planned number of steps.
"""
from __future__ import annotations

import copy
import logging
import math
import os
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch

from ..atomic import atomic_path
from .base import Monitor, update_index, updates_applied

log = logging.getLogger(__name__)

RULES = ("median", "ema")
# Keys of an optimizer's param_groups and attributes of schedulers holding learning rates.
_GROUP_LR_KEYS = ("lr", "initial_lr", "max_lr", "min_lr")
_SCHEDULER_LR_ATTRS = ("base_lrs", "max_lrs", "min_lrs")


class DivergenceError(RuntimeError):
    """Raised when a run keeps diverging after the allowed number of rollbacks."""


def save_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then ``os.replace`` it in.

    ``os.replace`` is atomic on POSIX and Windows, so a reader (or a crash) never sees
    a half-written file: ``path`` holds either the old snapshot or the new one.
    """
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def scale_learning_rates(optimizers: list[torch.optim.Optimizer], schedulers: list[Any], factor: float) -> None:
    """Multiply every learning rate an optimizer or scheduler holds by ``factor``.

    Param groups' ``lr``/``initial_lr``/``max_lr``/``min_lr``, and schedulers'
    ``base_lrs``/``max_lrs``/``min_lrs``: `accel`'s schedules are ``LambdaLR`` factors
    of ``base_lrs``, so scaling those rescales the rest of the schedule.
    """
    for opt in optimizers:
        for group in opt.param_groups:
            for key in _GROUP_LR_KEYS:
                if isinstance(group.get(key), (int, float)):
                    group[key] = group[key] * factor
    for s in {id(s): s for s in schedulers}.values():
        for attr in _SCHEDULER_LR_ATTRS:
            values = getattr(s, attr, None)
            if isinstance(values, list) and all(isinstance(v, (int, float)) for v in values):
                setattr(s, attr, [v * factor for v in values])


class DivergenceGuard(Monitor):
    """Watch the training loss; on a spike, roll back, lower the learning rate, go on.

    Rows (:meth:`frame`): step, action (``"rollback"`` or ``"raise lr"``), loss,
    reference, restored_step, lr_scale, new_lr. ``verbose`` also logs each row
    (logger ``accel.callbacks.divergence_guard``, level WARNING).
    """

    columns = ("step", "action", "loss", "reference", "restored_step", "lr_scale", "new_lr")

    def __init__(self, *, factor: float = 3.0, rule: str = "median", window: int = 20, min_history: int = 5,
                 ema_decay: float = 0.9, snapshot_every: int = 10, lr_factor: float = 0.5,
                 max_retries: int = 3, restore_after: int | None = None, path: str | os.PathLike | None = None,
                 verbose: bool = True):
        super().__init__(every=1)
        if rule not in RULES:
            raise ValueError(f"unknown spike rule {rule!r}; valid: {', '.join(RULES)}")
        if not factor > 1:
            raise ValueError(f"factor must be > 1 (a spike is a loss above factor × typical), got {factor}")
        if not 0 < lr_factor < 1:
            raise ValueError(f"lr_factor must be in (0, 1), got {lr_factor}")
        if not 0 < ema_decay < 1:
            raise ValueError(f"ema_decay must be in (0, 1), got {ema_decay}")
        for name, value in dict(window=window, min_history=min_history, snapshot_every=snapshot_every).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if min_history > window:
            raise ValueError(f"min_history ({min_history}) cannot exceed window ({window})")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be a non-negative int, got {max_retries!r}")
        if restore_after is not None and (isinstance(restore_after, bool) or not isinstance(restore_after, int)
                                          or restore_after < 1):
            raise ValueError(f"restore_after must be None (keep the lowered rate) or a positive int "
                             f"(healthy steps before raising it again), got {restore_after!r}")
        self.factor, self.rule, self.window, self.min_history = factor, rule, window, min_history
        self.ema_decay, self.snapshot_every, self.lr_factor = ema_decay, snapshot_every, lr_factor
        self.max_retries, self.restore_after, self.verbose = max_retries, restore_after, verbose
        self.path = Path(path) if path is not None else None
        self.losses: deque[float] = deque(maxlen=window)
        self.ema: float | None = None
        self.lr_scale = 1.0
        self._good: dict[str, Any] | None = None
        self._candidate: dict[str, Any] | None = None
        self._healthy_since_snapshot = 0
        self._healthy_since_change = 0

    @property
    def interventions(self) -> list[dict[str, Any]]:
        """The rollbacks (rows with action ``"rollback"``), oldest first."""
        return [r for r in self.rows if r["action"] == "rollback"]

    # -- the spike rule -------------------------------------------------------------
    def reference(self) -> float:
        """The typical recent loss a spike is judged against (NaN before ``min_history``)."""
        if len(self.losses) < self.min_history:
            return float("nan")
        if self.rule == "median":
            return float(np.median(self.losses))
        return float(self.ema)

    def is_spike(self, loss: float) -> bool:
        if not math.isfinite(loss):
            return True
        ref = self.reference()
        return math.isfinite(ref) and loss > self.factor * ref

    def _record_healthy(self, loss: float) -> None:
        self.losses.append(loss)
        self.ema = loss if self.ema is None else self.ema_decay * self.ema + (1 - self.ema_decay) * loss

    # -- snapshots --------------------------------------------------------------------
    def _snapshot(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        return copy.deepcopy({
            "step": updates_applied(trainer),
            "lr_scale": self.lr_scale,
            "model": pl_module.state_dict(),
            "optimizers": [o.state_dict() for o in trainer.optimizers],
            "schedulers": [c.scheduler.state_dict() for c in trainer.lr_scheduler_configs],
        })

    def _promote(self, snapshot: dict[str, Any]) -> None:
        self._good = snapshot
        if self.path is not None:
            save_atomic(snapshot, self.path)

    @property
    def good_step(self) -> int | None:
        """The number of updates of the snapshot a rollback would restore."""
        return None if self._good is None else int(self._good["step"])

    def _restore(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        snap = self._good
        pl_module.load_state_dict(snap["model"])
        for opt, state in zip(trainer.optimizers, snap["optimizers"]):
            opt.load_state_dict(copy.deepcopy(state))
        schedulers = self._schedulers(trainer)
        for s, state in zip(schedulers, snap["schedulers"]):
            s.load_state_dict(copy.deepcopy(state))
        # The snapshot's rates were set under its own scale; bring them to the new one.
        self.lr_scale *= self.lr_factor
        scale_learning_rates(trainer.optimizers, schedulers, self.lr_scale / snap["lr_scale"])

    @staticmethod
    def _schedulers(trainer: pl.Trainer) -> list[Any]:
        return [c.scheduler for c in trainer.lr_scheduler_configs]

    # -- Lightning hooks ----------------------------------------------------------------
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._promote(self._snapshot(trainer, pl_module))
        self._candidate, self._healthy_since_snapshot, self._healthy_since_change = None, 0, 0

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        loss_t = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss_t is None:
            return
        loss = float(loss_t.detach()) if isinstance(loss_t, torch.Tensor) else float(loss_t)
        step = update_index(trainer, after_update=True)
        if self.is_spike(loss):
            self._intervene(trainer, pl_module, loss, step)
            return
        self._record_healthy(loss)
        self._healthy_since_snapshot += 1
        self._healthy_since_change += 1
        if self._healthy_since_snapshot >= self.snapshot_every:
            if self._candidate is not None:
                self._promote(self._candidate)
            self._candidate = self._snapshot(trainer, pl_module)
            self._healthy_since_snapshot = 0
        if self.restore_after is not None and self.lr_scale < 1.0 and self._healthy_since_change >= self.restore_after:
            self._raise(trainer, loss, step)

    def _current_lr(self, trainer: pl.Trainer) -> float:
        return float(trainer.optimizers[0].param_groups[0]["lr"]) if trainer.optimizers else float("nan")

    def _log(self, trainer: pl.Trainer, step: int, action: str, loss: float, restored: int | None) -> None:
        lr = self._current_lr(trainer)
        self.record(step, action=action, loss=loss, reference=self.reference(), restored_step=restored,
                    lr_scale=self.lr_scale, new_lr=lr)
        if self.verbose:
            log.warning("DivergenceGuard: %s at step %d (loss %.4g); restored step %s, lr -> %.4g",
                        action, step, loss, restored, lr)

    def _intervene(self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: float,
                   step: int | None = None) -> None:
        step = update_index(trainer, after_update=True) if step is None else step
        if len(self.interventions) >= self.max_retries:
            raise DivergenceError(
                f"training loss diverged at step {step} (loss {loss:.4g}, typical {self.reference():.4g}) "
                f"after {len(self.interventions)} rollbacks (max_retries={self.max_retries}); the learning "
                f"rate is already scaled by {self.lr_scale:.3g}. Lower the learning rate or raise max_retries.")
        restored = self.good_step
        self._restore(trainer, pl_module)
        self._candidate, self._healthy_since_snapshot, self._healthy_since_change = None, 0, 0
        self._log(trainer, step, "rollback", loss, restored)

    def _raise(self, trainer: pl.Trainer, loss: float, step: int) -> None:
        """Undo one lowering of the rate (never above the planned rate)."""
        new_scale = min(1.0, self.lr_scale / self.lr_factor)
        scale_learning_rates(trainer.optimizers, self._schedulers(trainer), new_scale / self.lr_scale)
        self.lr_scale, self._healthy_since_change = new_scale, 0
        self._log(trainer, step, "raise lr", loss, None)

    # -- checkpointing ------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "losses": list(self.losses), "ema": self.ema, "lr_scale": self.lr_scale,
                "healthy_since_change": self._healthy_since_change}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(copy.deepcopy(state_dict))
        self.losses = deque(state_dict["losses"], maxlen=self.window)
        self.ema = state_dict["ema"]
        self.lr_scale = state_dict["lr_scale"]
        self._healthy_since_change = int(state_dict.get("healthy_since_change", 0))
