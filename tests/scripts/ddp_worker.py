"""Train one small run, single-process or DDP, and save what the DDP test compares.

Run as a script (Lightning's ``ddp`` strategy relaunches this same script for the
other ranks): ``python ddp_worker.py {single,ddp} OUT_DIR``. Rank 0 writes the first
step's gradients (after DDP's all-reduce) and the final weights to ``OUT_DIR``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from accel.data import make_datamodule
from accel.experiments.parallel.ddp_check import FirstGradients
from accel.module import Classifier
from accel.seeding import seed_everything
from accel.training import fit

GLOBAL_BATCH = 64
STEPS = 12


def main(mode: str, out: Path) -> None:
    devices = 2 if mode == "ddp" else 1
    seed_everything(0)
    dm = make_datamodule("digits", GLOBAL_BATCH // devices, standardize=True, device="cpu",
                         drop_last=True)
    module = Classifier({"name": "mlp", "in_features": 64, "hidden": [32], "out_features": 10},
                        {"name": "momentum", "lr": 0.05})
    initial = {n: w.detach().clone() for n, w in module.state_dict().items()}
    grads = FirstGradients()
    fit(module, dm, 1, callbacks=[grads], accelerator="cpu", devices=devices,
        strategy="ddp" if mode == "ddp" else "auto", max_steps=STEPS,
        limit_val_batches=0)
    if module.global_rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        torch.save({"grads": grads.grads, "weights": module.state_dict(),
                    "initial": initial,
                    "world_size": module.trainer.world_size}, out / f"{mode}.pt")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
