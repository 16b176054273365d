"""Signal propagation through a residual network, block by block (Brock et al. 2021a; De & Smith 2020).

Brock et al.'s *signal-propagation plots* follow three statistics of the activations
``h_l`` after every residual block, computed on one batch, each averaged over channels:

- the **squared channel mean**, ``mean_c (E_{n,p} h[n,c,p])²`` (mean shift: all inputs
  pushed the same way, which ReLU's positive outputs cause in an unnormalized net);
- the **channel variance**, ``mean_c Var_{n,p} h[n,c,p]``;
- the **residual-branch variance**, the same for the branch output ``α·f(·)`` before it is
  added to the skip path.

De & Smith's argument compares the last with the skip path: under BatchNorm the branch
has unit variance while ``Var(h_l)`` grows with ``l``, so ``Var(branch)/Var(skip)`` falls
like ``1/l`` and deep blocks start close to the identity. Statistics use the network in
training mode (batch statistics, as BatchNorm normalizes in training) on a copy, so the
model's running statistics and noise counters are left alone.
"""
from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..models.resnet import ResidualBlock


def channel_stats(h: torch.Tensor) -> tuple[float, float]:
    """``(mean_c μ_c², mean_c σ_c²)`` over channels (dim 1) of an (N, C, *) tensor; biased variances."""
    if h.dim() < 2:
        raise ValueError(f"expected activations of shape (N, C) or (N, C, *), got {tuple(h.shape)}")
    dims = (0, *range(2, h.dim()))
    h = h.detach().double()
    return float((h.mean(dims) ** 2).mean()), float(h.var(dims, unbiased=False).mean())


def residual_blocks(model: nn.Module) -> list[ResidualBlock]:
    """The model's residual blocks in forward order; a ValueError if it has none."""
    blocks = [m for m in model.modules() if isinstance(m, ResidualBlock)]
    if not blocks:
        raise ValueError(f"{type(model).__name__} has no ResidualBlock; signal propagation needs a residual "
                         f"network such as accel.models.resnet.ResNet1d")
    return blocks


def block_statistics(model: nn.Module, x: torch.Tensor) -> pd.DataFrame:
    """One row per residual block: ``block`` (1-based), ``stage`` (0-based; a projecting
    block opens a new stage), ``in_stage`` (1-based position in its stage), ``sq_mean``,
    ``var`` (of the block output), ``residual_var``, ``skip_var`` and ``ratio`` =
    residual_var / skip_var."""
    net = copy.deepcopy(model).train()
    blocks = residual_blocks(net)
    seen: dict[tuple[int, str], torch.Tensor] = {}
    hooks = []
    for i, b in enumerate(blocks):
        for part, module in (("out", b), ("residual", b.residual), ("skip", b.shortcut)):
            hooks.append(module.register_forward_hook(
                lambda mod, inp, out, key=(i, part): seen.__setitem__(key, out)))
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in hooks:
            h.remove()
    rows, stage, in_stage = [], 0, 0
    for i, b in enumerate(blocks):
        if b.project and i > 0:
            stage, in_stage = stage + 1, 0
        in_stage += 1
        sq_mean, var = channel_stats(seen[(i, "out")])
        _, residual_var = channel_stats(seen[(i, "residual")])
        _, skip_var = channel_stats(seen[(i, "skip")])
        rows.append(dict(block=i + 1, stage=stage, in_stage=in_stage, sq_mean=sq_mean, var=var,
                         residual_var=residual_var, skip_var=skip_var,
                         ratio=residual_var / skip_var if skip_var > 0 else float("nan")))
    return pd.DataFrame(rows)


def signal_propagation(build, x: torch.Tensor, seeds, **labels) -> pd.DataFrame:
    """:func:`block_statistics` of ``build()`` at initialization for each seed (seeded before
    building), stacked with a ``seed`` column and constant ``labels`` columns."""
    frames = []
    for seed in seeds:
        torch.manual_seed(seed)
        frames.append(block_statistics(build(), x).assign(seed=seed, **labels))
    return pd.concat(frames, ignore_index=True)


def growth_per_block(stats: pd.DataFrame, column: str = "var") -> float:
    """The geometric-mean factor by which ``column`` grows per block over the whole network:
    ``(last / first) ** (1 / (blocks − 1))``."""
    values = stats.sort_values("block")[column].to_numpy(float)
    if len(values) < 2:
        raise ValueError("growth per block needs at least two blocks")
    return float((values[-1] / values[0]) ** (1.0 / (len(values) - 1)))


def stage_slope(stats: pd.DataFrame, column: str = "var", *, stage: int | None = None, log_x: bool = False,
                log_y: bool = False) -> float:
    """Least-squares slope of ``column`` against the block's position in one stage (the
    last, by default): ``Var(h)`` per block (linear growth under BatchNorm), or with both
    logs the exponent of a power law (``ratio ∝ l^{-1}`` under BatchNorm)."""
    stage = int(stats["stage"].max()) if stage is None else stage
    rows = stats[stats["stage"] == stage].sort_values("in_stage")
    if len(rows) < 2:
        raise ValueError(f"stage {stage} has {len(rows)} block(s); a slope needs at least two")
    xs, ys = rows["in_stage"].to_numpy(float), rows[column].to_numpy(float)
    xs, ys = (np.log(xs) if log_x else xs), (np.log(ys) if log_y else ys)
    return float(np.polyfit(xs, ys, 1)[0])
