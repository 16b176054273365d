"""One network at a time, with the data order and initialization of a stacked member.

:func:`accel.experiments.members.train_members` trains many small networks as one
vectorized model, but only under element-wise update rules and without buffers. The
layer-wise rules of the large-batch chapter (LARS, LAMB: one trust ratio per tensor)
and BatchNorm nets cannot be stacked, so they are trained here, one after the other, by
a plain loop that reproduces a member's run exactly: the weights of ``build()`` after
``seed_everything(seed)``, a fresh permutation of the training set per epoch from a
generator seeded with ``seed`` (the last incomplete batch dropped), the same schedule
stepped after each update, and the same evaluation rows. A run here and a member with
the same seed therefore start from the same weights and see the same batches (a paired
design), and their histories can be concatenated. The optimizer is built by
:func:`accel.optim.make_optimizer` (its parameter groups: no weight decay, and for LAMB
optionally no trust ratio, on biases and norm parameters).
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..optim import make_optimizer
from ..schedules import make_schedule
from ..seeding import seed_everything

Split = tuple[torch.Tensor, torch.Tensor]
GradHook = Callable[[int, nn.Module, torch.optim.Optimizer], None]


def lenet1d(length: int = 40, num_classes: int = 10) -> nn.Module:
    """The MNIST CNN of LAMB's public reference (cybertronai/pytorch-lamb, ``test_lamb.py``), in 1-D.

    Conv(1→20, k5) → ReLU → max-pool 2 → Conv(20→50, k5) → ReLU → max-pool 2 → Linear(→500)
    → ReLU → Linear(500→10): no normalization, and layer widths from 20 to 500 (the
    heterogeneous widths under which You et al. 2017 saw ‖w‖/‖∇w‖ differ between layers).
    """
    if length < 16:
        raise ValueError(f"length must be at least 16 for two k5 convolutions and pools, got {length}")
    flat = 50 * (((length - 4) // 2 - 4) // 2)
    return nn.Sequential(OrderedDict([
        ("shape", nn.Unflatten(1, (1, length))),
        ("conv1", nn.Conv1d(1, 20, 5)), ("relu1", nn.ReLU()), ("pool1", nn.MaxPool1d(2)),
        ("conv2", nn.Conv1d(20, 50, 5)), ("relu2", nn.ReLU()), ("pool2", nn.MaxPool1d(2)),
        ("flat", nn.Flatten()), ("fc1", nn.Linear(flat, 500)), ("relu3", nn.ReLU()),
        ("fc2", nn.Linear(500, num_classes))]))


def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    was = model.training
    model.eval()
    with torch.no_grad():
        logits = model(x)
        loss = float(F.cross_entropy(logits, y))
        acc = float((logits.argmax(-1) == y).float().mean()) if math.isfinite(loss) else float("nan")
    model.train(was)
    return loss, acc


def train_one(build: Callable[[], nn.Module], train: Split, spec: Mapping[str, Any], *, steps: int,
              batch_size: int, seed: int, schedule: dict[str, Any] | None = None,
              evals: Mapping[str, Split] | None = None, eval_every: int | None = None,
              train_eval: int | None = None, label_smoothing: float = 0.0, on_grad: GradHook | None = None,
              labels: Mapping[str, Any] | None = None) -> tuple[pd.DataFrame, nn.Module]:
    """Train ``build()`` with optimizer ``spec`` for ``steps`` steps; return the evaluation rows
    and the trained model.

    Rows (every ``eval_every`` steps and at the end) have the columns of
    :func:`~accel.experiments.members.train_members`: ``labels``, ``seed``, ``optimizer``,
    ``lr``, ``weight_decay``, ``step``, ``train_loss``/``train_acc`` on the first
    ``train_eval`` training samples and ``<name>_loss``/``<name>_acc`` per split of
    ``evals``. ``label_smoothing`` (Szegedy et al. 2016) applies to the training loss only.
    ``on_grad(step, model, optimizer)`` runs after each backward pass, before the update
    (``step`` counts updates from 0). A run whose loss becomes non-finite stops, and its
    remaining rows have NaN metrics (diverged).
    """
    x, y = train
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if not isinstance(batch_size, int) or not 1 <= batch_size <= len(x):
        raise ValueError(f"batch_size must be an int in [1, {len(x)}], got {batch_size!r}")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
    seed_everything(int(seed))
    model = build()
    optimizer = make_optimizer(model, dict(spec))
    scheduler = make_schedule(optimizer, schedule, steps) if schedule else None
    generator = torch.Generator().manual_seed(int(seed))
    per_epoch, every = len(x) // batch_size, eval_every or steps
    xe, ye = (x, y) if train_eval is None else (x[:train_eval], y[:train_eval])
    splits = {"train": (xe, ye), **(evals or {})}
    base = {**(labels or {}), "seed": int(seed), "optimizer": spec["name"], "lr": float(spec["lr"]),
            "weight_decay": float(spec.get("weight_decay", 0.0))}
    rows: list[dict[str, Any]] = []
    diverged, perm = False, None
    for t in range(1, steps + 1):
        if not diverged:
            j = (t - 1) % per_epoch
            if j == 0:
                perm = torch.randperm(len(x), generator=generator)
            idx = perm[j * batch_size:(j + 1) * batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx], label_smoothing=label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            if not torch.isfinite(loss):
                diverged = True
            else:
                loss.backward()
                if on_grad is not None:
                    on_grad(t - 1, model, optimizer)
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
        if t % every == 0 or t == steps:
            row = {**base, "step": t}
            for name, (xs, ys) in splits.items():
                loss_v, acc_v = (float("nan"), float("nan")) if diverged else _evaluate(model, xs, ys)
                row[f"{name}_loss"], row[f"{name}_acc"] = loss_v, acc_v
            rows.append(row)
    return pd.DataFrame(rows), model


def train_each(build: Callable[[], nn.Module], train: Split, runs: Sequence[Mapping[str, Any]], **kwargs: Any
               ) -> pd.DataFrame:
    """:func:`train_one` for each ``{"spec": ..., "seed": ..., **labels}`` of ``runs`` (a
    ``label_smoothing`` or ``schedule`` key overrides ``kwargs`` for that run); the rows of
    all runs, with ``member`` = the run's index."""
    frames = []
    for k, run in enumerate(runs):
        labels = {key: v for key, v in run.items() if key not in ("spec", "seed", "label_smoothing", "schedule")}
        options = {**kwargs, **{key: run[key] for key in ("label_smoothing", "schedule") if key in run}}
        rows, _ = train_one(build, train, run["spec"], seed=run["seed"], labels=labels, **options)
        frames.append(rows.assign(member=k))
    return pd.concat(frames, ignore_index=True)


def trust_ratios_at_init(build: Callable[[], nn.Module], train: Split, seeds: Sequence[int], batch_size: int
                         ) -> pd.DataFrame:
    """Per seed, ‖w‖, ‖∇w‖ and their ratio for every weight tensor at initialization, on the
    seed's first batch of ``batch_size`` samples (the data order of :func:`train_one`): the
    first iteration at which You et al. 2017 (Table 1) compare layers.
    Rows of :func:`accel.callbacks.trust_ratio_table` plus ``seed``."""
    from ..callbacks.trust_ratio import trust_ratio_table

    x, y = train
    frames = []
    for seed in seeds:
        seed_everything(int(seed))
        model = build()
        idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(int(seed)))[:batch_size]
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        frames.append(trust_ratio_table(model).assign(seed=int(seed)))
    return pd.concat(frames, ignore_index=True)


def spread_per_seed(ratios: pd.DataFrame) -> pd.Series:
    """Per seed, the largest layer's ‖w‖/‖∇w‖ over the smallest's (the disparity that motivates LARS)."""
    return ratios.groupby("seed")["ratio"].agg(lambda r: float(np.max(r) / np.min(r)))
