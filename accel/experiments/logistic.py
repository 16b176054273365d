"""Logistic regression on scikit-learn's breast-cancer set: how input preprocessing conditions it.

LeCun et al. (1998, "Efficient BackProp", §4.3) argue that inputs should be centered
and scaled (and ideally decorrelated) because the Hessian of a linear model's loss is
built from the input second-moment matrix: for the logistic loss
``H(w) = X̃ᵀ D X̃ / n`` with ``X̃ = [X, 1]`` and ``D = diag(σ(1−σ)) ≤ 1/4``, so at
``w = 0`` it is exactly ``X̃ᵀX̃ / (4n)``. Features on scales from 10⁻³ to 10³ make it
badly conditioned; whitening makes it the identity (up to the factor 1/4).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .quadratic import condition_number
from .races import Race, race_to_target

PREPROCESSING = ("raw", "centered", "standardized", "whitened")


def breast_cancer() -> tuple[np.ndarray, np.ndarray]:
    """The 569 × 30 breast-cancer features (bundled with scikit-learn) and 0/1 labels."""
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    return x.astype(np.float64), y.astype(np.float64)


def preprocess(x: np.ndarray, how: str) -> np.ndarray:
    """``raw``; ``centered`` (mean 0); ``standardized`` (mean 0, std 1 per feature);
    ``whitened`` (PCA whitening: covariance exactly the identity)."""
    if how not in PREPROCESSING:
        raise ValueError(f"unknown preprocessing {how!r}; valid: {', '.join(PREPROCESSING)}")
    if how == "raw":
        return x.copy()
    xc = x - x.mean(0)
    if how == "centered":
        return xc
    if how == "standardized":
        return xc / xc.std(0)
    eig, vec = np.linalg.eigh(np.cov(xc, rowvar=False, bias=True))
    return xc @ vec / np.sqrt(eig)


def hessian(x: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """The mean logistic loss's Hessian in (weights, bias) at ``w`` (zeros by default)."""
    xt = np.c_[x, np.ones(len(x))]
    z = xt @ (np.zeros(xt.shape[1]) if w is None else w)
    s = 1.0 / (1.0 + np.exp(-z))
    return (xt * (s * (1 - s))[:, None]).T @ xt / len(x)


def loss(model: nn.Linear, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy of the linear model's logits."""
    return F.binary_cross_entropy_with_logits(model(x).squeeze(1), y)


def gd_steps(x: np.ndarray, y: np.ndarray, target: float, max_steps: int) -> Race:
    """Full-batch GD (``torch.optim.SGD``) from ``w = 0`` until the loss reaches ``target``.

    The step is ``1/L`` with ``L = λmax(X̃ᵀX̃)/(4n)``, an upper bound on the Hessian's
    largest eigenvalue everywhere, so GD descends monotonically for every preprocessing.
    """
    lr = 1.0 / float(np.linalg.eigvalsh(hessian(x))[-1])
    model = nn.Linear(x.shape[1], 1).double()
    nn.init.zeros_(model.weight)
    nn.init.zeros_(model.bias)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    return race_to_target(model, lambda m: loss(m, xt, yt), {"name": "sgd", "lr": lr}, target, max_steps)


def preprocessing_race(x: np.ndarray, y: np.ndarray, target: float, max_steps: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every :data:`PREPROCESSING` of ``x``: κ of the Hessian at ``w = 0`` and :func:`gd_steps` to ``target``.

    Returns the summary (one row per preprocessing: ``κ(H) at w=0``, ``steps to loss
    <target>`` (NaN if not reached), ``reached``, ``final loss``) and the loss curves as a
    long table (``inputs``, ``step``, ``loss``). LeCun et al. (1998, §4.3) predict the
    ordering raw > centered > standardized > whitened in both κ and steps.
    """
    rows, curves = [], []
    for how in PREPROCESSING:
        xp = preprocess(x, how)
        race = gd_steps(xp, y, target=target, max_steps=max_steps)
        rows.append({"inputs": how, "κ(H) at w=0": condition_number(hessian(xp)),
                     f"steps to loss {target:g}": race.steps if race.reached else np.nan, "reached": race.reached,
                     "final loss": race.losses[-1]})
        curves.append(pd.DataFrame({"inputs": how, "step": np.arange(len(race.losses)), "loss": race.losses}))
    return pd.DataFrame(rows), pd.concat(curves, ignore_index=True)
