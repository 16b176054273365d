"""Initialization experiments: activation statistics through depth at initialization
(Glorot & Bengio 2010, Fig. 6; He et al. 2015, Sec. 2.2), and the symmetry of units.

For a layer with n inputs, var(out) = n · var(w) · var(in) when weights and inputs are
independent and centred; a scheme keeps the signal's scale through depth exactly when
n · var(w) compensates what the activation does to the variance (1 for tanh near 0,
1/2 for ReLU, hence He's 2/n).
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..data import TensorDataModule
from ..models import MLP
from ..models.activation import make_activation
from ..models.init import init_weights
from ..module import Classifier
from ..seeding import seed_everything
from ..training import fit


WEIGHTS, INPUTS = 0, 1  # independent streams derived from one base seed


def stream_seed(seed: int, stream: int) -> int:
    """A seed for ``stream`` derived from ``seed`` with NumPy's ``SeedSequence``: the inputs and
    the weights of one experiment come from one base seed but never from the same numbers
    (``torch.manual_seed(s)`` and ``torch.Generator().manual_seed(s)`` give the same stream)."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    state = np.random.SeedSequence(int(seed), spawn_key=(int(stream),)).generate_state(2, np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


def depth_inputs(n: int, features: int, seed: int = 0) -> torch.Tensor:
    """``n`` standard-normal inputs of ``features`` features from the inputs' own stream."""
    return torch.randn(n, features, generator=torch.Generator().manual_seed(stream_seed(seed, INPUTS)))


def forward_through_depth(x: torch.Tensor, depth: int = 10, width: int = 500, *, activation: str = "tanh",
                          init: str = "normal", std: float = 0.01, seed: int = 0,
                          saturation: float = 0.99) -> tuple[pd.DataFrame, list[np.ndarray]]:
    """Push ``x`` through ``depth`` linear+activation layers of ``width`` units (no bias).

    The weights come from the weights' stream of ``seed`` (:func:`stream_seed`), drawn under
    ``torch.random.fork_rng`` so the caller's global generator is left as it was.
    Returns a per-layer table (mean, std, fraction of units with |a| > ``saturation``,
    fraction of exact zeros) and the activations of every layer for histograms.
    """
    if depth < 1 or width < 1:
        raise ValueError(f"depth and width must be positive, got {depth}, {width}")
    act = make_activation(activation)
    rows, acts = [], []
    h = x
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(stream_seed(seed, WEIGHTS))
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


def depth_survey(x: torch.Tensor, schemes: Mapping[str, dict[str, Any]], *, depth: int = 10, width: int = 500,
                 seed: int = 0, sample: int = 3000) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`forward_through_depth` for every scheme (name → its keyword arguments), as two
    tidy tables for seaborn: the per-layer statistics with a ``scheme`` column, and
    ``sample`` activations drawn without replacement from each layer (``scheme, layer,
    activation``) for histograms, so a figure need not hold all depth × n × width values.

    Every scheme's weights are drawn from ``seed``; the subsamples come from one
    ``numpy`` generator seeded with ``seed``, drawn scheme by scheme, layer by layer.
    """
    tables, samples = [], []
    rng = np.random.default_rng(seed)
    for name, kw in schemes.items():
        table, acts = forward_through_depth(x, depth=depth, width=width, seed=seed, **kw)
        tables.append(table.assign(scheme=name))
        for layer, a in enumerate(acts, start=1):
            samples.append(pd.DataFrame({"scheme": name, "layer": layer,
                                         "activation": rng.choice(a, sample, replace=False)}))
    return pd.concat(tables, ignore_index=True), pd.concat(samples, ignore_index=True)


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


def symmetry_run(datamodule: TensorDataModule, epochs: int, init: str, *, width: int = 32,
                 seed: int = 0, init_std: float = 0.05, lr: float = 1e-2) -> dict[str, Any]:
    """Train a one-hidden-layer tanh MLP (features–``width``–classes, Adam at ``lr``) from
    ``init`` and report how alike its hidden units ended up: :func:`unit_spread` and
    :func:`effective_rank` of the hidden weight matrix, with the final training and test
    accuracy. A constant ``init`` should leave the spread at 0 and the rank at 1
    (Goodfellow et al. 2016, §8.4); ``width=1`` is the one-feature reference.

    The RNG is seeded with ``seed`` right before the network is built, so the weights
    depend on it; the data order is the ``datamodule``'s own (its ``seed``).
    """
    seed_everything(seed)
    net = MLP(datamodule.num_features, [width], datamodule.num_classes, activation="tanh",
              init=init, init_std=init_std)
    module = Classifier(net, {"name": "adam", "lr": lr})
    history = fit(module, datamodule, epochs)
    w = net.hidden_layers()[0].weight
    return {"init": init, "width": width, "unit spread": unit_spread(w), "rank": effective_rank(w),
            "train accuracy": history["train_acc"].iloc[-1], "test accuracy": history["val_acc"].iloc[-1]}
