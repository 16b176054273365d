"""Symmetry between hidden units: identical incoming weights mean identical units.

If every unit of a layer starts equal, every unit gets the same gradient, so they stay
equal forever; the layer computes one feature, however wide it is.
"""
from __future__ import annotations

import torch


def unit_spread(weight: torch.Tensor) -> float:
    """Largest distance of any unit's incoming weights (a row) from the mean row, relative
    to the mean row's norm. Zero when all units are identical."""
    w = weight.detach().reshape(weight.shape[0], -1).double()
    mean = w.mean(0, keepdim=True)
    spread = (w - mean).norm(dim=1).max()
    return float(spread / mean.norm().clamp_min(1e-12))


def effective_rank(weight: torch.Tensor, tol: float = 1e-5) -> int:
    """Number of singular values above ``tol`` × the largest: 1 for a symmetric layer."""
    s = torch.linalg.svdvals(weight.detach().reshape(weight.shape[0], -1).double())
    if s[0] == 0:
        return 0
    return int((s > tol * s[0]).sum())
