"""The edge of stability: a network's sharpness under full-batch gradient descent.

Cohen et al. (2021, "Gradient descent on neural networks typically occurs at the edge
of stability") train networks with full-batch GD at step η and track the top Hessian
eigenvalue λmax (the *sharpness*): it rises ("progressive sharpening") until it reaches
2/η, GD's stability threshold on a quadratic, then hovers there while the loss keeps
falling, non-monotonically. :func:`sharpness_runs` trains one network per (rate, seed);
:func:`sharpening_summary` reads one run's two records.

Full-batch GD is a plain ``torch.optim.SGD`` loop here, not a Lightning Trainer: each
step is one epoch of a single batch, and the Trainer's per-epoch work (loops, hooks,
logging) costs more than the step of a small network. The sharpness is measured with
:func:`accel.hessian.top_eigenvalue` (Lanczos), as the ``TopHessianEigenvalue`` callback does.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..callbacks.curvature import edge_of_stability
from ..hessian import top_eigenvalue
from ..losses import one_hot_mse
from ..seeding import seed_everything


def check_rates(lrs: Sequence[float], at_least: int = 2) -> list[float]:
    """The learning rates, largest first; at least ``at_least`` distinct positive ones.

    The chapter's prose names the runs by position (the largest rate, the next one, the
    smallest), so fewer distinct rates than it names is an error, not an empty sentence.
    """
    rates = sorted({float(lr) for lr in lrs}, reverse=True)
    if len(rates) < at_least or any(not (lr > 0 and math.isfinite(lr)) for lr in rates):
        raise ValueError(f"need at least {at_least} distinct positive learning rates, got {list(lrs)!r}")
    return rates


def full_batch_gd(build: Callable[[], nn.Module], x: torch.Tensor, y: torch.Tensor, lr: float, steps: int,
                  every: int, seed: int = 0, loss_fn: Callable = one_hot_mse) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``steps`` updates of full-batch GD at ``lr``; the sharpness every ``every`` steps, the loss every step.

    Seeds everything with ``seed`` before ``build()``. Row ``step = k`` describes the
    weights after ``k`` updates (``0``: the initialization). The Lanczos start vector has
    its own seed (``seed + k``), so measuring does not change the training.
    """
    if steps < 1 or every < 1:
        raise ValueError(f"need steps >= 1 and every >= 1, got steps={steps}, every={every}")
    seed_everything(seed)
    model = build()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    sharp, losses = [], []
    for step in range(steps + 1):
        if step % every == 0 or step == steps:
            sharp.append({"step": step, "eigenvalue": top_eigenvalue(model, loss_fn, (x, y), seed=seed + step)})
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        losses.append({"step": step, "loss": float(loss.detach())})
        if step == steps or not math.isfinite(losses[-1]["loss"]):
            break
        loss.backward()
        opt.step()
    frame = pd.DataFrame(sharp).assign(two_over_lr=2.0 / lr)
    return frame, pd.DataFrame(losses)


def sharpness_runs(build: Callable[[], nn.Module], x: torch.Tensor, y: torch.Tensor, lrs: Sequence[float],
                   seeds: Sequence[int], steps: int, every: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`full_batch_gd` for every rate and seed (the square loss of Cohen et al.).

    Seed ``s`` gives the same initial network at every rate. Returns the sharpness and the
    loss records stacked, with ``lr`` and ``seed`` columns.
    """
    sharp_frames, loss_frames = [], []
    for lr in lrs:
        for seed in seeds:
            sharp, loss = full_batch_gd(build, x, y, lr, steps, every, seed)
            sharp_frames.append(sharp.assign(lr=lr, seed=seed))
            loss_frames.append(loss.assign(lr=lr, seed=seed))
    return pd.concat(sharp_frames, ignore_index=True), pd.concat(loss_frames, ignore_index=True)


def sharpening_summary(sharpness: pd.DataFrame, losses: pd.DataFrame, reach: float = 0.9) -> dict[str, float]:
    """One run's :func:`~accel.callbacks.curvature.edge_of_stability` numbers plus ``loss_rises``.

    ``loss_rises``: the fraction of consecutive recorded steps, from the first step where
    λmax reached ``reach``·2/η on, in which the training loss went up (Cohen et al.'s
    non-monotone descent at the edge of stability); NaN if the sharpness never got there
    or fewer than two losses were recorded after it.
    """
    s = edge_of_stability(sharpness, reach)
    start = s["first_step"] if math.isfinite(s["first_step"]) else math.inf
    after = losses.loc[losses["step"] >= start, "loss"]
    s["loss_rises"] = float((after.diff().dropna() > 0).mean()) if len(after) > 1 else float("nan")
    return s


def summaries(sharpness: pd.DataFrame, losses: pd.DataFrame, reach: float = 0.9) -> pd.DataFrame:
    """:func:`sharpening_summary` for every (lr, seed) run, with the initial sharpness and final loss."""
    rows = []
    for (lr, seed), sharp in sharpness.groupby(["lr", "seed"], sort=False):
        loss = losses[(losses.lr == lr) & (losses.seed == seed)]
        rows.append({"lr": lr, "seed": seed, "2/lr": 2 / lr, "initial λmax": float(sharp.eigenvalue.iloc[0]),
                     **sharpening_summary(sharp, loss, reach), "final loss": float(loss.loss.iloc[-1])})
    return pd.DataFrame(rows)


def reached_all(summary: pd.DataFrame) -> dict[float, bool]:
    """Per rate: whether every seed's sharpness reached the edge (a finite ``first_step``)."""
    return {lr: bool(np.isfinite(g.first_step).all()) for lr, g in summary.groupby("lr", sort=False)}
