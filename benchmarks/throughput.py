"""Throughput of `accel` (Lightning) against a plain PyTorch loop, and time to accuracy.

Both sides train the same MNIST-1D CNN on the same device-resident tensors with the
same optimizer, batch size and epochs, and evaluate on the test set after every
epoch. What differs is only the machinery: Lightning's Trainer with accel's module,
data module and callbacks versus a hand-written ``for`` loop. Printed, per batch size
(``--batch-size 128 2048``): samples per second of each (median of ``--repeats`` timed
runs after one warm-up, the two interleaved, each going first in every other pair),
their ratio (plain time / accel time of each interleaved pair, the median and range over
pairs; 1.0 means Lightning costs nothing) and Lightning's overhead per step in
milliseconds (the pair's time difference over the steps run, Trainer construction and
per-epoch validation included).
Each run has at least ``--min-steps`` steps, so fixed costs (about 13 ms a fit) are a small share.
For a one-core figure run it under ``taskset -c 0``.

``--target-acc`` then trains accel's CNN until its test accuracy reaches the target
(Greydanus 2020 reports about 94 % for a CNN on MNIST-1D) and prints the epochs and
seconds it took, or that it did not get there within ``--max-epochs``.

    .venv/bin/python benchmarks/throughput.py                 # CPU: batch 128 and 2048
    taskset -c 0 .venv/bin/python benchmarks/throughput.py    # one core
    .venv/bin/python benchmarks/throughput.py --epochs 20 --target-acc 0.94   # a GPU
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from accel.data import make_datamodule
from accel.device import default_device, default_precision
from accel.models import CNN1d
from accel.module import Classifier
from accel.seeding import seed_everything
from accel.training import fit

MODEL = {"name": "cnn1d", "in_channels": 1, "channels": [32, 32, 32], "num_classes": 10,
         "kernel_size": 5, "stride": 2}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_accel(dm, epochs: int, lr: float) -> tuple[float, float]:
    """Seconds and final test accuracy of ``accel.training.fit``."""
    seed_everything(0)
    module = Classifier(MODEL, {"name": "adam", "lr": lr})
    start = time.perf_counter()
    history = fit(module, dm, epochs)
    _sync(dm.x_train.device)
    return time.perf_counter() - start, float(history["val_acc"].iloc[-1])


def run_plain(dm, epochs: int, lr: float, autocast: bool) -> tuple[float, float]:
    """Seconds and final test accuracy of a hand-written loop doing the same work."""
    seed_everything(0)
    device = dm.x_train.device
    spec = {k: v for k, v in MODEL.items() if k != "name"}
    model = CNN1d(**spec).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    x, y, xt, yt = dm.x_train, dm.y_train, dm.x_test, dm.y_test
    g = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    acc = 0.0
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=g).to(device)
        xs, ys = x[order], y[order]
        for i in range(0, len(x), dm.batch_size):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                loss = F.cross_entropy(model(xs[i:i + dm.batch_size]), ys[i:i + dm.batch_size])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            acc = (model(xt).argmax(1) == yt).float().mean().item()
    _sync(device)
    return time.perf_counter() - start, acc


def time_to_accuracy(dm, target: float, max_epochs: int, lr: float) -> tuple[int | None, float]:
    """Epochs and seconds until accel's CNN first reaches ``target`` test accuracy."""
    seed_everything(0)
    module = Classifier(MODEL, {"name": "adam", "lr": lr},
                        {"name": "cosine"}, total_steps=max_epochs * len(dm.train_dataloader()))
    start = time.perf_counter()
    history = fit(module, dm, max_epochs)
    seconds = time.perf_counter() - start
    reached = history[history["val_acc"] >= target]
    if reached.empty:
        return None, seconds
    epoch = int(reached["epoch"].iloc[0]) + 1
    return epoch, seconds * epoch / max_epochs


def measure(batch_size: int, args: argparse.Namespace, device: torch.device, autocast: bool) -> None:
    """Interleaved timings of accel and the plain loop at one batch size, one line each and a ratio."""
    dm = make_datamodule("mnist1d", batch_size, source_args={"num_samples": args.samples}, device=device)
    steps_per_epoch = len(dm.train_dataloader())
    epochs = max(args.epochs, -(-args.min_steps // steps_per_epoch))
    steps, n = steps_per_epoch * epochs, len(dm.x_train) * epochs
    print(f"batch={batch_size} epochs={epochs} steps={steps}")
    run_accel(dm, 1, args.lr), run_plain(dm, 1, args.lr, autocast)  # warm-up: kernels, caches
    times: dict[str, list[float]] = {"accel": [], "plain": []}
    accs = {}
    runs = {"accel": lambda: run_accel(dm, epochs, args.lr),
            "plain": lambda: run_plain(dm, epochs, args.lr, autocast)}
    for i in range(args.repeats):  # interleaved, so drifts in machine load hit both alike;
        for k in (("accel", "plain") if i % 2 == 0 else ("plain", "accel")):  # each goes first half the time
            t, accs[k] = runs[k]()
            times[k].append(t)
    median = {k: statistics.median(v) for k, v in times.items()}
    for k in times:
        print(f"{k:>6}: {n / median[k]:>10,.0f} samples/s  (median of {args.repeats}: "
              f"{median[k]:.2f} s; final test acc {accs[k]:.3f})")
    # Repeat i of each is a pair, run back to back: a shared VM's speed drifts by tens of per
    # cent within a minute, and a pair sees the same drift.
    ratios = sorted(p / a for a, p in zip(times["accel"], times["plain"]))
    overheads = sorted((a - p) / steps * 1e3 for a, p in zip(times["accel"], times["plain"]))
    print(f"throughput ratio accel/plain = {statistics.median(ratios):.3f} at batch {batch_size} "
          f"(median of {args.repeats} interleaved pairs; range {ratios[0]:.3f}-{ratios[-1]:.3f}); "
          f"overhead {statistics.median(overheads):.2f} ms per step "
          f"({median['plain'] / steps * 1e3:.2f} ms plain step)")
    if args.target_acc is not None:
        epoch, seconds = time_to_accuracy(dm, args.target_acc, args.max_epochs, args.lr)
        if epoch is None:
            print(f"time to {args.target_acc:.0%} test accuracy: not reached in {args.max_epochs} "
                  f"epochs ({seconds:.1f} s)")
        else:
            print(f"time to {args.target_acc:.0%} test accuracy: epoch {epoch}, ~{seconds:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=5000, help="MNIST-1D samples (80%% train)")
    ap.add_argument("--batch-size", type=int, nargs="+", default=[128, 2048])
    ap.add_argument("--epochs", type=int, default=3, help="at least this many epochs per run")
    ap.add_argument("--min-steps", type=int, default=96, help="at least this many steps per run")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--target-acc", type=float, default=None)
    ap.add_argument("--max-epochs", type=int, default=60)
    args = ap.parse_args()

    device = default_device()
    precision = default_precision()
    autocast = precision.startswith("bf16")
    print(f"device={device} precision={precision} torch threads={torch.get_num_threads()} "
          f"MNIST-1D samples={args.samples}")
    for batch_size in args.batch_size:
        measure(batch_size, args, device, autocast)


if __name__ == "__main__":
    main()
