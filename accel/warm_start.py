"""Checkpoints and warm starts, on Lightning's own machinery.

A run can be continued in three ways, which differ in what they bring back:

* **resume** (:func:`resume`): ``Trainer.fit(ckpt_path=...)`` restores the weights, the
  optimizer's state (Adam's moment estimates and step count), the scheduler, the loops'
  counters (epoch, global step) and every callback's state; the data order follows the
  epoch (:class:`accel.data.loader.TensorBatchLoader` shuffles by epoch, and
  :class:`DataOrder` tells it which epoch it serves), so the continuation is the
  uninterrupted run;
* **weights only** (:func:`load_weights`): ``LightningModule.load_from_checkpoint`` rebuilds
  the module from its saved hyper-parameters (optionally overridden: a new optimizer or
  schedule) with the trained weights, and a *fresh* optimizer and schedule;
* **warm start** (:class:`WarmStart`): the weights and, optionally, the optimizer's
  state of a checkpoint, under this fit's own rates and schedule (the "bonus knob" of
  the sources: resume from a snapshot, choosing the learning rate anew).

Every load passes ``weights_only=True``: a checkpoint is read as data (tensors, numbers,
strings, containers), and unpickling cannot run code from it (``torch.load``'s safe mode).
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint

from .callbacks.history import History
from .checks import positive_int
from .training import fit, make_trainer

PathLike = str | os.PathLike


def checkpointing(dirpath: PathLike, every_n_epochs: int = 1) -> ModelCheckpoint:
    """Lightning's ``ModelCheckpoint`` keeping the whole state at the end of every ``every_n_epochs``-th epoch.

    Files are named ``epoch=E.ckpt`` with ``E`` the number of epochs completed, so a run
    resumed from one starts epoch ``E + 1``; every one is kept (``save_top_k=-1``).
    """
    positive_int("every_n_epochs", every_n_epochs)
    return ModelCheckpoint(dirpath=str(dirpath), filename="epoch={epoch}", auto_insert_metric_name=False,
                           save_top_k=-1, every_n_epochs=every_n_epochs, save_on_train_epoch_end=True,
                           enable_version_counter=False)


def checkpoint_path(dirpath: PathLike, epoch: int) -> Path:
    """The file :func:`checkpointing` writes after ``epoch`` completed epochs."""
    # ModelCheckpoint formats the 0-based epoch index of the epoch that just ended.
    return Path(dirpath) / f"epoch={epoch - 1}.ckpt"


def fit_checkpointed(module: pl.LightningModule, datamodule: pl.LightningDataModule, epochs: int,
                     dirpath: PathLike, *, every_n_epochs: int = 1, seed: int | None = None,
                     callbacks: Sequence[pl.Callback] = (), **trainer_kwargs: Any
                     ) -> tuple[pd.DataFrame, dict[int, Path]]:
    """:func:`accel.training.fit` with a checkpoint every ``every_n_epochs`` epochs.

    Returns the per-epoch history and ``{epochs completed: checkpoint file}``.
    """
    saver = checkpointing(dirpath, every_n_epochs)
    history = fit(module, datamodule, epochs, seed=seed, callbacks=[*callbacks, saver],
                  enable_checkpointing=True, **trainer_kwargs)
    files = {e: checkpoint_path(dirpath, e) for e in range(every_n_epochs, epochs + 1, every_n_epochs)}
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        raise RuntimeError(f"ModelCheckpoint did not write {missing}")
    return history, files


class DataOrder(pl.Callback):
    """At each epoch's start, tell a loader that shuffles by epoch which epoch it serves.

    Lightning does this for samplers through ``set_epoch(epochs processed)``.
    :class:`accel.data.loader.TensorBatchLoader` counts its own epochs from the one it
    was built in, which is wrong when a fit resumes from a checkpoint: a schedule's
    ``estimated_stepping_batches`` builds the loader before the loops' counters are
    restored, so without this the resumed run would replay epoch 0's order.

    ``offset`` shifts the order by whole epochs: a new fit that continues a run after
    ``offset`` epochs (from its weights) then sees the batches the run would have seen.
    """

    def __init__(self, offset: int = 0):
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ValueError(f"offset must be an int >= 0 (epochs), got {offset!r}")
        self.offset = offset

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        loader = trainer.train_dataloader
        if hasattr(loader, "epoch"):
            loader.epoch = self.offset + int(trainer.fit_loop.epoch_progress.current.processed)


def resume(module: pl.LightningModule, datamodule: pl.LightningDataModule, epochs: int,
           ckpt_path: PathLike, *, callbacks: Sequence[pl.Callback] = (), **trainer_kwargs: Any) -> pd.DataFrame:
    """Continue the run saved in ``ckpt_path`` until ``epochs`` epochs in all, with its whole state.

    ``module`` is a module of the same architecture and specs (its weights are replaced);
    the history has the rows of the epochs run here, numbered as in the original run.
    """
    _existing(ckpt_path)
    history = History()
    trainer = make_trainer(epochs, [history, DataOrder(), *callbacks], **trainer_kwargs)
    with warnings.catch_warnings():
        # The ModelCheckpoint that wrote the file is not needed to continue from it; pass
        # one in ``callbacks`` to keep saving (then Lightning restores its state too).
        warnings.filterwarnings("ignore", ".*callbacks used to create the checkpoint.*")
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(ckpt_path), weights_only=True)
    return history.frame()


def load_weights(ckpt_path: PathLike, cls: type[pl.LightningModule] | None = None,
                 **overrides: Any) -> pl.LightningModule:
    """A module rebuilt from ``ckpt_path``: its trained weights, a fresh optimizer and schedule.

    ``overrides`` replace saved hyper-parameters (``optimizer={...}``, ``schedule={...}``,
    ``total_steps=...``), or supply those that were not saved (``model=net`` for a
    :class:`accel.module.Classifier` built around an ``nn.Module``). ``cls`` defaults to
    :class:`accel.module.Classifier`.
    """
    _existing(ckpt_path)
    if cls is None:
        from .module import Classifier
        cls = Classifier
    return cls.load_from_checkpoint(str(ckpt_path), map_location="cpu", weights_only=True, **overrides)


def load_checkpoint(ckpt_path: PathLike) -> dict[str, Any]:
    """The checkpoint's contents, read as data only (``weights_only=True``)."""
    import torch
    _existing(ckpt_path)
    return torch.load(str(ckpt_path), map_location="cpu", weights_only=True)


class WarmStart(pl.Callback):
    """Start this fit from a checkpoint's weights (and optimizer state), keeping this fit's rates.

    At ``on_fit_start`` (the optimizer exists, no step has run) the module's weights are
    loaded from ``ckpt_path``; with ``optimizer_state=True`` so is the optimizer's
    per-parameter state (Adam's moments and step count), while every param group keeps
    the learning rate and options this fit's optimizer and schedule gave it. The loops
    start at epoch 0: the new schedule runs from its first step.
    """

    def __init__(self, ckpt_path: PathLike, *, optimizer_state: bool = True):
        _existing(ckpt_path)
        self.ckpt_path = str(ckpt_path)
        self.optimizer_state = bool(optimizer_state)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        ckpt = trainer.strategy.load_checkpoint(self.ckpt_path, weights_only=True)
        pl_module.load_state_dict(ckpt["state_dict"])
        if not self.optimizer_state:
            return
        saved = ckpt.get("optimizer_states")
        if not saved or len(saved) != len(trainer.optimizers):
            raise ValueError(f"{self.ckpt_path} holds {len(saved or [])} optimizer state(s) for "
                             f"{len(trainer.optimizers)} optimizer(s); save the whole state "
                             f"(ModelCheckpoint(save_weights_only=False)) or pass optimizer_state=False")
        for opt, state in zip(trainer.optimizers, saved):
            current = opt.state_dict()
            sizes = [len(g["params"]) for g in current["param_groups"]]
            if sizes != [len(g["params"]) for g in state["param_groups"]]:
                raise ValueError(f"the optimizer's parameter groups {sizes} differ from the checkpoint's "
                                 f"{[len(g['params']) for g in state['param_groups']]}: the optimizer state "
                                 f"belongs to another grouping (layer_lr, weight decay); pass "
                                 f"optimizer_state=False")
            opt.load_state_dict({"state": state["state"], "param_groups": current["param_groups"]})


def _existing(path: PathLike) -> None:
    if not Path(path).is_file():
        raise ValueError(f"no checkpoint file at {path}")
