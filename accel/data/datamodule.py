"""LightningDataModules over in-memory tensors."""
from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np
import pytorch_lightning as pl
import torch

from . import sources, transforms
from ..device import default_device
from .loader import TensorBatchLoader, check_batch_size

DATASETS: dict[str, Callable[..., sources.Arrays]] = {
    "mnist1d": sources.mnist1d,
    "mnist5k": sources.mnist5k,
    "digits": sources.digits,
    "mnist": lambda folder=sources.DATA_DIR / "mnist": sources.idx_mnist(folder),
    "fashion_mnist": lambda folder=sources.DATA_DIR / "fashion_mnist": sources.idx_mnist(folder),
}


class TensorDataModule(pl.LightningDataModule):
    """Train and test tensors held in memory (on ``device``), served by :class:`TensorBatchLoader`.

    ``standardize`` centres and scales every feature with the training set's statistics
    (:func:`accel.data.transforms.standardize`; LeCun et al. 1998, "Efficient BackProp");
    off by default because several chapters study what happens without it.
    """

    def __init__(self, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                 batch_size: int = 128, *, eval_batch_size: int = 4096, standardize: bool = False,
                 seed: int = 0, device: str | torch.device | None = None, drop_last: bool = False):
        super().__init__()
        check_batch_size(batch_size, len(x_train), drop_last)
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.seed, self.drop_last = seed, drop_last
        if standardize:
            x_train, x_test = transforms.standardize(x_train, x_test)
        dev = torch.device(device) if device is not None else rank_device()
        self.x_train = torch.as_tensor(x_train, dtype=torch.float32, device=dev)
        self.y_train = torch.as_tensor(y_train, device=dev)
        self.x_test = torch.as_tensor(x_test, dtype=torch.float32, device=dev)
        self.y_test = torch.as_tensor(y_test, device=dev)

    def setup(self, stage: str | None = None) -> None:
        """Under DDP, each rank keeps its tensors on its own GPU (the Trainer's root device).

        A data module built before the processes were launched (``ddp_spawn``, a
        notebook) holds them on ``cuda:0``; rank k moves them to ``cuda:k`` here.
        """
        trainer = getattr(self, "trainer", None)
        target = getattr(getattr(trainer, "strategy", None), "root_device", None)
        if target is not None and target.type == "cuda" and self.x_train.device != target:
            for name in ("x_train", "y_train", "x_test", "y_test"):
                setattr(self, name, getattr(self, name).to(target))

    @property
    def num_features(self) -> int:
        return int(np.prod(self.x_train.shape[1:]))

    @property
    def num_classes(self) -> int:
        return int(torch.max(self.y_train).item()) + 1

    def set_batch_size(self, batch_size: int) -> None:
        """Change the training batch size; it takes effect at the next ``train_dataloader()``
        (every epoch under ``reload_dataloaders_every_n_epochs=1``)."""
        check_batch_size(batch_size, len(self.x_train), self.drop_last)
        self.batch_size = batch_size

    def train_dataloader(self) -> TensorBatchLoader:
        rank, world = _rank_and_world(self)
        loader = TensorBatchLoader(self.x_train, self.y_train, self.batch_size, shuffle=True,
                                   drop_last=self.drop_last, seed=self.seed, rank=rank, world_size=world)
        # A loader rebuilt mid-fit (reload_dataloaders_every_n_epochs) continues the
        # per-epoch shuffles instead of repeating epoch 0's permutation.
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            loader.epoch = int(trainer.current_epoch)
        return loader

    def val_dataloader(self) -> TensorBatchLoader:
        return TensorBatchLoader(self.x_test, self.y_test, min(self.eval_batch_size, len(self.x_test)))

    test_dataloader = val_dataloader


def rank_device() -> torch.device:
    """:func:`accel.device.default_device`, on this DDP rank's own GPU: ``cuda:$LOCAL_RANK``.

    Lightning's DDP launcher starts one process per GPU with ``LOCAL_RANK`` set; every
    rank putting its data on ``cuda:0`` would crowd one GPU and make each step copy
    across devices.
    """
    dev = default_device()
    if dev.type != "cuda":
        return dev
    rank = os.environ.get("LOCAL_RANK", "")
    index = int(rank) if rank.isdigit() else 0
    return torch.device("cuda", index % max(1, torch.cuda.device_count()))


def _rank_and_world(dm: pl.LightningDataModule) -> tuple[int, int]:
    """This process's rank and the number of processes (1 outside DDP)."""
    trainer = getattr(dm, "trainer", None)
    if trainer is None:
        return 0, 1
    return int(trainer.global_rank), int(trainer.world_size)


def make_datamodule(name: str, batch_size: int = 128, *, source_args: dict[str, Any] | None = None,
                    train_size: int | None = None, **kwargs: Any) -> TensorDataModule:
    """A data module for a named set; ``source_args`` go to the generator or loader;
    ``train_size`` keeps the first samples of the (already shuffled) training split."""
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; valid: {', '.join(DATASETS)}")
    x, y, xt, yt = DATASETS[name](**(source_args or {}))
    if train_size is not None:
        if not 1 <= train_size <= len(x):
            raise ValueError(f"train_size must be between 1 and {len(x)}, got {train_size}")
        x, y = x[:train_size], y[:train_size]
    return TensorDataModule(x, y, xt, yt, batch_size=batch_size, **kwargs)
