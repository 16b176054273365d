"""One trial of the race: train a workload's model with one configuration until the target or the budget.

Training goes through the package's Lightning path (:class:`accel.module.Classifier`,
:func:`accel.training.make_trainer`); :class:`RaceEval` measures the validation error
every ``eval_every`` optimizer steps (and at the last step) on the whole test split in
eval mode, keeps the training seconds with evaluation time taken out, and stops the run
at the first evaluation that reaches the target (later evaluations could not change the
time to target). A non-finite training loss stops it too (a diverged run never reaches it), as
does a preconditioner's matrix root failing on non-finite values.

Two recipes evaluate at weights other than the trained ones:

- **Schedule-Free** optimizers (``adamw_schedulefree``) hold the gradient point ``y`` in the
  parameters and the point to evaluate, ``x``, behind ``optimizer.eval()``; each evaluation
  switches to ``x`` and back (:func:`accel.callbacks.schedule_free.set_mode`). A model with
  BatchNorm statistics has them recomputed at ``x`` over the training split first, as
  Defazio et al. do (the training run's own statistics are restored after), and that pass
  is counted as training time;
- the **EMA** trick (``tricks.ema_decay``) keeps an exponential moving average of the
  weights and buffers (:class:`torch.optim.swa_utils.AveragedModel`), updated after every
  optimizer step (counted as training time), and evaluates the average.
"""
from __future__ import annotations

import math
import time
from functools import partial
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ...callbacks.schedule_free import schedule_free_optimizers, set_mode
from ...module import Classifier
from ...seeding import seed_everything
from ...training import make_trainer
from .recipes import schedule_spec
from .workloads import Workload


class RaceClassifier(Classifier):
    """:class:`accel.module.Classifier` with label smoothing on the training loss (evaluation is unaffected)."""

    def __init__(self, *args: Any, label_smoothing: float = 0.0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.label_smoothing = float(label_smoothing)
        if self.label_smoothing:
            if self.loss_fn is not F.cross_entropy:
                raise ValueError("label_smoothing needs the cross_entropy loss")
            self.loss_fn = partial(F.cross_entropy, label_smoothing=self.label_smoothing)

    # The race measures with RaceEval alone: keeping and logging the training loss and
    # accuracy (the Classifier's epoch metrics) took a fifth of a 600-step digits trial.
    def _accumulate(self, stage: str, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        pass

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        pass


class RaceEval(pl.Callback):
    """Validation error every ``every`` updates; training seconds without evaluation; early stop at target.

    ``ema_decay`` (None: off) evaluates an exponential moving average of the weights;
    ``x_train`` is the training split, used to recompute BatchNorm statistics at a
    Schedule-Free optimizer's evaluation point.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, every: int, max_steps: int, target: float | None,
                 eval_batch: int = 4096, ema_decay: float | None = None, x_train: torch.Tensor | None = None):
        self.x, self.y, self.every, self.max_steps = x, y, every, max_steps
        self.target, self.eval_batch = target, eval_batch
        self.ema_decay, self.x_train = ema_decay, x_train
        self.averaged: AveragedModel | None = None
        self.history: list[dict[str, float]] = []
        self.eval_seconds = 0.0
        self.diverged = False

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        set_mode(trainer, True)  # Schedule-Free steps only in train mode
        if self.ema_decay:
            self.averaged = AveragedModel(pl_module.net, multi_avg_fn=get_ema_multi_avg_fn(self.ema_decay),
                                          use_buffers=True)
        self.start = time.perf_counter()

    def _error(self, net: nn.Module) -> float:
        was_training = net.training
        net.eval()
        device = next(net.parameters()).device
        with torch.no_grad():
            x, y = self.x.to(device), self.y.to(device)
            correct = sum(int((net(x[i:i + self.eval_batch]).argmax(-1) == y[i:i + self.eval_batch]).sum())
                          for i in range(0, len(x), self.eval_batch))
        net.train(was_training)
        return 1.0 - correct / len(x)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        step = trainer.global_step  # updates applied
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged = True
            self.history.append({"step": step, "seconds": self._train_seconds(), "error": math.nan})
            trainer.should_stop = True
            return
        if self.averaged is not None:
            self.averaged.update_parameters(pl_module.net)
        if step % self.every and step < self.max_steps:
            return
        schedule_free = bool(schedule_free_optimizers(trainer))
        saved = None
        if schedule_free:
            set_mode(trainer, False)  # the parameters now hold x
            saved = self._recalibrate(pl_module)
        seconds = self._train_seconds()
        t0 = time.perf_counter()
        error = self._error(self.averaged.module if self.averaged is not None else pl_module)
        if schedule_free:
            if saved:
                for module, state in saved:
                    module.load_state_dict(state)
            set_mode(trainer, True)
        self.eval_seconds += time.perf_counter() - t0
        self.history.append({"step": step, "seconds": seconds, "error": error})
        if self.target is not None and error <= self.target:
            trainer.should_stop = True

    def _recalibrate(self, pl_module: pl.LightningModule) -> list[tuple[nn.Module, dict[str, Any]]]:
        """Recompute BatchNorm running statistics at the current weights; return the old ones."""
        norms = [m for m in pl_module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                 and m.track_running_stats]
        if not norms or self.x_train is None:
            return []
        saved = [(m, {k: v.clone() for k, v in m.state_dict().items()}) for m in norms]
        momenta = [m.momentum for m in norms]
        was_training = pl_module.training
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the pass
        pl_module.train()
        device = next(pl_module.parameters()).device
        with torch.no_grad():
            for i in range(0, len(self.x_train), self.eval_batch):
                pl_module(self.x_train[i:i + self.eval_batch].to(device))
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        pl_module.train(was_training)
        return saved

    def _train_seconds(self) -> float:
        return time.perf_counter() - self.start - self.eval_seconds


def run_trial(workload: Workload, variant: str, config: dict[str, Any], *, seed: int, budget: int,
              target: float | None, threads: int | None = None) -> dict[str, Any]:
    """Train one trial; return its evaluation history and bookkeeping (JSON-ready).

    ``budget`` is the step budget (the schedule spans it); ``target`` the error that stops
    the run (``None``: train the whole budget, as the target-setting runs do).
    """
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _train(workload, variant, config, seed=seed, budget=budget, target=target)
    finally:
        torch.set_num_threads(previous)


def _train(workload: Workload, variant: str, config: dict[str, Any], *, seed: int, budget: int,
           target: float | None) -> dict[str, Any]:
    seed_everything(seed)
    dm = workload.datamodule(seed=seed)
    tricks = config["tricks"]
    module = RaceClassifier(workload.model_spec(variant), dict(config["optimizer"]),
                            schedule_spec(config, budget), total_steps=budget, loss=workload.loss,
                            label_smoothing=tricks.get("label_smoothing") or 0.0)
    probe = RaceEval(dm.x_test, dm.y_test, workload.eval_every, budget, target,
                     ema_decay=tricks.get("ema_decay") or None, x_train=dm.x_train)
    steps_per_epoch = math.ceil(len(dm.x_train) / workload.batch_size)
    epochs = math.ceil(budget / steps_per_epoch) + 1
    trainer = make_trainer(epochs, [probe], max_steps=budget, limit_val_batches=0,
                           gradient_clip_val=tricks.get("grad_clip") or None)
    start = time.perf_counter()
    try:
        trainer.fit(module, datamodule=dm)
    except torch.linalg.LinAlgError as err:
        # A preconditioner's matrix root (Shampoo, SOAP) of a non-finite matrix: the run diverged.
        if "non-finite" not in str(err):
            raise
        probe.diverged = True
        probe.history.append({"step": int(trainer.global_step), "seconds": probe._train_seconds(), "error": math.nan})
    return {"history": probe.history, "steps_run": int(trainer.global_step), "diverged": probe.diverged,
            "wall_seconds": time.perf_counter() - start, "eval_seconds": probe.eval_seconds}
