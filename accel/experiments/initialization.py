"""Initialization experiments: activation statistics through depth at initialization
(Glorot & Bengio 2010, Fig. 6; He et al. 2015, Sec. 2.2), and the symmetry of units.

For a layer with n inputs, var(out) = n · var(w) · var(in) when weights and inputs are
independent and centred; a scheme keeps the signal's scale through depth exactly when
n · var(w) compensates what the activation does to the variance (1 for tanh near 0,
1/2 for ReLU, hence He's 2/n).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..models.activation import make_activation
from ..models.init import init_weights


def forward_through_depth(x: torch.Tensor, depth: int = 10, width: int = 500, *, activation: str = "tanh",
                          init: str = "normal", std: float = 0.01, seed: int = 0,
                          saturation: float = 0.99) -> tuple[pd.DataFrame, list[np.ndarray]]:
    """Push ``x`` through ``depth`` linear+activation layers of ``width`` units (no bias).

    Returns a per-layer table (mean, std, fraction of units with |a| > ``saturation``,
    fraction of exact zeros) and the activations of every layer for histograms.
    """
    if depth < 1 or width < 1:
        raise ValueError(f"depth and width must be positive, got {depth}, {width}")
    torch.manual_seed(seed)
    act = make_activation(activation)
    rows, acts = [], []
    h = x
    with torch.no_grad():
        for layer in range(1, depth + 1):
            lin = nn.Linear(h.shape[1], width, bias=False)
            init_weights(lin, init, std)
            h = act(lin(h))
            a = h.numpy()
            rows.append({"layer": layer, "mean": float(a.mean()), "std": float(a.std()),
                         "saturated": float((np.abs(a) > saturation).mean()),
                         "zero": float((a == 0).mean())})
            acts.append(a.ravel())
    return pd.DataFrame(rows), acts


def geometric_rate(std: pd.Series) -> float:
    """Per-layer factor r of a geometric trend std_l ≈ c·r^l, fitted on log(std) by least squares."""
    y = np.log(np.asarray(std, float))
    layers = np.arange(1, len(y) + 1)
    slope = np.polyfit(layers, y, 1)[0]
    return float(np.exp(slope))


# ---------------------------------------------------------------- symmetry between units
# If every unit of a layer starts equal, every unit gets the same gradient, so they stay
# equal forever; the layer computes one feature, however wide it is.

def unit_spread(weight: torch.Tensor) -> float:
    """Largest distance of any unit's incoming weights (a row) from the mean row, relative
    to the mean row's norm. Zero when all units are identical."""
    w = weight.detach().reshape(weight.shape[0], -1).double()
    mean = w.mean(0, keepdim=True)
    spread = (w - mean).norm(dim=1).max()
    return float(spread / mean.norm().clamp_min(1e-12))


def effective_rank(weight: torch.Tensor, tol: float = 1e-5) -> int:
    """Number of singular values above ``tol`` × the largest: 1 for a symmetric layer."""
    w = weight.detach().reshape(weight.shape[0], -1).double()
    return int(torch.linalg.matrix_rank(w, rtol=tol))

