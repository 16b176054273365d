"""Data parallelism is a larger batch: Lightning's DDP on 2 processes against one process.

The same check as the test suite's ``tests/test_ddp.py`` (there Lightning relaunches a
script for each rank; here :func:`.launch.launch` starts the ranks and Lightning's DDP
strategy joins them): a small MLP on scikit-learn's digits, per-process batch
``GLOBAL_BATCH / devices``, momentum SGD for ``STEPS`` steps from the same seed. If DDP
is "one process on the global batch", the first step's all-reduced gradient equals the
single process's gradient of the mean over the global batch, and the weights after the
run agree up to float summation order.
"""
from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch

from ...data import make_datamodule
from ...module import Classifier
from ...seeding import seed_everything
from ...training import fit
from .launch import launch

GLOBAL_BATCH = 64
STEPS = 12
MODEL = {"name": "mlp", "in_features": 64, "hidden": [32], "out_features": 10}
OPTIMIZER = {"name": "momentum", "lr": 0.05}


class FirstGradients(pl.Callback):
    """The gradients the optimizer sees at the first step (after DDP's all-reduce)."""

    def __init__(self) -> None:
        self.grads: dict[str, torch.Tensor] = {}

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if trainer.global_step == 0:
            self.grads = {n: p.grad.detach().clone() for n, p in pl_module.named_parameters()}


def train(devices: int) -> dict[str, Any] | None:
    """One run on ``devices`` processes (call it in each rank); rank 0 returns what is compared."""
    seed_everything(0)
    dm = make_datamodule("digits", GLOBAL_BATCH // devices, standardize=True, device="cpu",
                         drop_last=True)
    module = Classifier(dict(MODEL), dict(OPTIMIZER))
    initial = {n: w.detach().clone() for n, w in module.state_dict().items()}
    grads = FirstGradients()
    fit(module, dm, 1, callbacks=[grads], accelerator="cpu", devices=devices,
        strategy="ddp" if devices > 1 else "auto", max_steps=STEPS, limit_val_batches=0)
    if module.global_rank != 0:
        return None
    return {"grads": grads.grads, "weights": module.state_dict(), "initial": initial,
            "world_size": module.trainer.world_size}


def _rank(rank: int, world: int) -> dict[str, Any] | None:
    return train(world)


def compare(single: dict[str, Any], ddp: dict[str, Any]) -> dict[str, float]:
    """Largest relative differences of the first step's gradients and of the final weights,
    and how far training moved the weights (the comparison is not vacuous)."""
    def rel(a: dict, b: dict) -> float:
        return max(float((a[k] - b[k]).abs().max() / b[k].abs().max().clamp_min(1e-12)) for k in b)
    moved = max(float((ddp["weights"][k] - ddp["initial"][k]).abs().max()) for k in ddp["weights"])
    return {"grad_rel_diff": rel(ddp["grads"], single["grads"]),
            "weight_rel_diff": rel(ddp["weights"], single["weights"]),
            "initial_rel_diff": rel(ddp["initial"], single["initial"]),
            "moved": moved, "world_size": float(ddp["world_size"])}


def run(devices: int = 2, timeout: float = 180.0) -> dict[str, float]:
    """The single-process run here, the DDP run on ``devices`` launched processes; compared."""
    single = train(1)
    ddp = launch(_rank, devices, timeout=timeout, init=False)[0]
    return compare(single, ddp)
