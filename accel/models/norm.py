"""Normalization layers by name, for MLPs (``dim=0``), 1-D and 2-D convolutions.

- ``bn``: BatchNorm (Ioffe & Szegedy 2015), statistics over the batch (and positions);
  with ``ghost_size=k`` over ghost batches of k samples (Hoffer et al. 2017,
  :mod:`accel.models.ghost_norm`).
- ``ln``: LayerNorm (Ba et al. 2016), statistics over each sample's features
  (for convolutions: over channels and positions, i.e. GroupNorm with one group).
- ``gn``: GroupNorm (Wu & He 2018); ``groups`` must divide the channel count.
- ``in``: InstanceNorm, per sample and channel (GroupNorm with one channel per group);
  convolutions only: an MLP unit is one number per sample, which it would zero.
- ``ws``: no activation normalization; the convolutions/linears standardize their
  weights instead (Qiao et al. 2019; see :mod:`accel.models.ws`).
- ``wsgn``: weight standardization followed by GroupNorm, as Qiao et al. use it.
- ``sws``: scaled weight standardization without any activation normalization, the
  normalizer-free recipe of Brock et al. 2021.
- ``none``: identity.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from .ghost_norm import GhostBatchNorm

NORMS = ("none", "bn", "ln", "gn", "in", "ws", "wsgn", "sws")
WEIGHT_STANDARDIZED = ("ws", "wsgn", "sws")


def check_norm(name: str) -> str:
    if name not in NORMS:
        raise ValueError(f"unknown norm {name!r}; valid: {', '.join(NORMS)}")
    return name


def check_groups(num_features: int, groups: int) -> int:
    """GroupNorm's group count must be a positive int dividing the channels."""
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or num_features % groups:
        divisors = [d for d in range(1, num_features + 1) if num_features % d == 0]
        raise ValueError(f"GroupNorm needs a group count that divides {num_features} channels; "
                         f"got groups={groups!r}; valid: {divisors}")
    return groups


def make_norm(name: str, num_features: int, dim: int = 0, groups: int = 8,
              ghost_size: int | None = None) -> nn.Module:
    """A normalization layer over ``num_features`` features/channels; ``dim`` is 0, 1 or 2."""
    check_norm(name)
    if dim not in (0, 1, 2):
        raise ValueError(f"dim must be 0 (MLP), 1 or 2 (convolutions), got {dim}")
    if ghost_size is not None and name != "bn":
        raise ValueError(f"ghost_size applies to norm='bn' only, not {name!r}")
    if name in ("none", "ws", "sws"):
        return nn.Identity()
    if name == "bn":
        if ghost_size is not None:
            return GhostBatchNorm(num_features, ghost_size)
        return (nn.BatchNorm1d, nn.BatchNorm1d, nn.BatchNorm2d)[dim](num_features)
    if name == "ln":
        return nn.LayerNorm(num_features) if dim == 0 else nn.GroupNorm(1, num_features)
    if name == "in":
        if dim == 0:
            raise ValueError("InstanceNorm needs positions to average over; for an MLP use "
                             "one of: ln, gn, bn")
        return nn.GroupNorm(num_features, num_features)
    return nn.GroupNorm(check_groups(num_features, groups), num_features)


def predict(model: nn.Module, x: torch.Tensor, *, batch_size: int | None = None,
            batch_stats: bool = False) -> torch.Tensor:
    """Logits for ``x`` in batches of ``batch_size`` (None: all at once).

    ``batch_stats=False`` is inference as deployed (eval mode: BatchNorm uses its running
    statistics); ``True`` normalizes with each batch's own statistics (train mode), on a
    copy of the model so its running statistics are not touched. The gap between the two
    is BatchNorm's train/eval discrepancy; batch-independent norms (LN, GN) show none.
    """
    n = len(x)
    size = n if batch_size is None else batch_size
    if size < 1 or (batch_stats and n % size):
        raise ValueError(f"batch_size must be a positive divisor of the {n} inputs with batch_stats, got {size}")
    net = copy.deepcopy(model).train(batch_stats)
    with torch.no_grad():
        return torch.cat([net(x[i:i + size]) for i in range(0, n, size)])
