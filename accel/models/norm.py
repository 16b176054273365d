"""Normalization layers by name, for MLPs (``dim=0``), 1-D and 2-D convolutions.

- ``bn``: BatchNorm (Ioffe & Szegedy 2015), statistics over the batch.
- ``ln``: LayerNorm (Ba et al. 2016), statistics over each sample's features
  (for convolutions: over channels and positions, i.e. GroupNorm with one group).
- ``gn``: GroupNorm (Wu & He 2018); ``groups`` must divide the channel count.
- ``in``: InstanceNorm, per sample and channel (GroupNorm with one channel per group).
- ``ws``: no activation normalization; the convolutions/linears standardize their
  weights instead (Qiao et al. 2019; see :mod:`accel.models.ws`).
- ``none``: identity.
"""
from __future__ import annotations

from torch import nn

NORMS = ("none", "bn", "ln", "gn", "in", "ws")


def check_norm(name: str) -> str:
    if name not in NORMS:
        raise ValueError(f"unknown norm {name!r}; valid: {', '.join(NORMS)}")
    return name


def make_norm(name: str, num_features: int, dim: int = 0, groups: int = 8) -> nn.Module:
    """A normalization layer over ``num_features`` features/channels; ``dim`` is 0, 1 or 2."""
    check_norm(name)
    if dim not in (0, 1, 2):
        raise ValueError(f"dim must be 0 (MLP), 1 or 2 (convolutions), got {dim}")
    if name in ("none", "ws"):
        return nn.Identity()
    if name == "bn":
        return (nn.BatchNorm1d, nn.BatchNorm1d, nn.BatchNorm2d)[dim](num_features)
    if name == "ln":
        return nn.LayerNorm(num_features) if dim == 0 else nn.GroupNorm(1, num_features)
    if name == "in":
        return nn.GroupNorm(num_features, num_features)
    if groups < 1 or num_features % groups:
        raise ValueError(f"GroupNorm needs a group count that divides {num_features} channels; "
                         f"got groups={groups}")
    return nn.GroupNorm(groups, num_features)
