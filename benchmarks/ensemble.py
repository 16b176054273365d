"""Seeds trained together: K seeds as one stacked ensemble against K sequential runs.

Both sides go through accel's Lightning path, :func:`accel.training.train_seeds`, on the
same MNIST-1D data, batch size and epochs: K fits one after another (``ensemble=False``)
against one fit of the K members stacked (``ensemble=True``, :mod:`accel.ensemble`).
Runs are interleaved (drifts in machine load hit both alike), the median of ``--repeats``
after a warm-up is reported, and one line per model says ``MODEL speed-up X.XX×``
(sequential seconds / ensemble seconds). Wall times on a shared machine are noisy: the
load average is printed with them.

    .venv/bin/python benchmarks/ensemble.py                    # 8 seeds, MLP and CNN
    .venv/bin/python benchmarks/ensemble.py --seeds 4 --models mlp
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from accel.data import make_datamodule
from accel.module import Classifier
from accel.training import train_seeds

MODELS = {
    # Greydanus 2020's MNIST-1D models: an MLP with two hidden layers of 100, a 3-layer CNN.
    "mlp": {"name": "mlp", "in_features": 40, "hidden": [100, 100], "out_features": 10},
    "cnn": {"name": "cnn1d", "in_channels": 1, "channels": [32, 32, 32], "num_classes": 10,
            "kernel_size": 5, "stride": 2},
}


def seconds(spec: dict, dm, epochs: int, seeds: list[int], ensemble: bool, lr: float) -> float:
    build = lambda: Classifier(spec, {"name": "adam", "lr": lr})  # noqa: E731
    start = time.perf_counter()
    train_seeds(build, dm, epochs, seeds, ensemble=ensemble)
    if dm.x_train.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["mlp", "cnn"])
    ap.add_argument("--samples", type=int, default=5000, help="MNIST-1D samples (80%% train)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--lr", type=float, default=3e-3)
    args = ap.parse_args()

    dm = make_datamodule("mnist1d", args.batch_size, source_args={"num_samples": args.samples})
    seeds = list(range(args.seeds))
    print(f"{args.seeds} seeds, batch {args.batch_size}, {args.epochs} epochs of {len(dm.x_train)} samples; "
          f"torch threads={torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}")
    for name in args.models:
        spec = MODELS[name]
        seconds(spec, dm, 1, seeds[:2], False, args.lr), seconds(spec, dm, 1, seeds[:2], True, args.lr)  # warm-up
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.repeats):
            for ensemble in (False, True):
                times[ensemble].append(seconds(spec, dm, args.epochs, seeds, ensemble, args.lr))
        seq, ens = statistics.median(times[False]), statistics.median(times[True])
        print(f"{name.upper()} speed-up {seq / ens:.2f}×  (sequential {seq:.2f} s, ensemble {ens:.2f} s; "
              f"load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
