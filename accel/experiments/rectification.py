"""RAdam's variance argument (Liu et al. 2020): the adaptive learning rate's early variance.

Adam scales each step by ψ_t = √((1 − β₂ᵗ)/v_t). With few gradients in v_t, ψ_t is an
inverse-root of a small-sample average: its variance is large (for t ≤ 2 it is
infinite). Liu et al. approximate the EMA by a simple average of ρ_t gradients, where

    ρ_∞ = 2/(1 − β₂) − 1,   ρ_t = ρ_∞ − 2tβ₂ᵗ/(1 − β₂ᵗ)            (their eq. 7)

and ψ_t² by a scaled inverse χ²(ρ_t), whose first-order variance is
Var[ψ_t] ≈ ρ_t / (2(ρ_t − 2)(ρ_t − 4)σ²). The rectification scales the step by

    r_t = √( (ρ_t − 4)(ρ_t − 2)ρ_∞ / ((ρ_∞ − 4)(ρ_∞ − 2)ρ_t) )      (their eq. 8)

so that Var[r_t ψ_t] = Var[ψ_∞]; it is defined for ρ_t > 4 and torch's RAdam applies it
when ρ_t > 5 (plain momentum SGD before that).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch


def _check_beta2(beta2: float) -> None:
    if not 0 < beta2 < 1:
        raise ValueError(f"beta2 must be in (0, 1), got {beta2}")


def rho_inf(beta2: float) -> float:
    """ρ_∞ = 2/(1 − β₂) − 1, the length of the simple average an EMA with β₂ approximates."""
    _check_beta2(beta2)
    return 2.0 / (1.0 - beta2) - 1.0


def rho(t: np.ndarray | int, beta2: float) -> np.ndarray:
    """ρ_t = ρ_∞ − 2tβ₂ᵗ/(1 − β₂ᵗ): the effective number of gradients in v_t at step t ≥ 1."""
    t = np.asarray(t, dtype=float)
    if np.any(t < 1):
        raise ValueError("steps start at t = 1")
    b = beta2 ** t
    return rho_inf(beta2) - 2.0 * t * b / (1.0 - b)


def rectification(t: np.ndarray | int, beta2: float) -> np.ndarray:
    """r_t of Liu et al. (2020), eq. 8; NaN where ρ_t ≤ 4 (the variance is unbounded there)."""
    r, ri = rho(t, beta2), rho_inf(beta2)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.sqrt((r - 4) * (r - 2) * ri / ((ri - 4) * (ri - 2) * r))
    return np.where(r > 4, out, np.nan)


def approximate_variance(rho_t: np.ndarray | float, sigma: float = 1.0) -> np.ndarray:
    """First-order Var[ψ] for ψ² ~ Scale-inv-χ²(ρ, 1/σ²): ρ / (2(ρ − 2)(ρ − 4)σ²), ρ > 4."""
    rho_t = np.asarray(rho_t, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        v = rho_t / (2 * (rho_t - 2) * (rho_t - 4) * sigma ** 2)
    return np.where(rho_t > 4, v, np.nan)


def adaptive_lr_variance(n: int = 20000, steps: int = 2000, beta2: float = 0.999,
                         seed: int = 0) -> pd.DataFrame:
    """Monte Carlo Var[ψ_t] over ``n`` independent coordinates fed N(0, 1) gradients.

    v_t is read from torch's own Adam state (``exp_avg_sq``), so the moving average is
    exactly the one Adam keeps; ψ_t = √((1 − β₂ᵗ)/v_t). Rows: ``step, rho, var_psi,
    r, var_rectified`` with var_rectified = r_t² Var[ψ_t] (NaN where r_t is undefined).
    """
    if n < 2 or steps < 1:
        raise ValueError(f"need n >= 2 coordinates and steps >= 1, got n={n}, steps={steps}")
    gen = torch.Generator().manual_seed(seed)
    theta = torch.nn.Parameter(torch.zeros(n, dtype=torch.float64))
    opt = torch.optim.Adam([theta], lr=1e-3, betas=(0.9, beta2))
    var = np.empty(steps)
    for t in range(1, steps + 1):
        theta.grad = torch.randn(n, generator=gen, dtype=torch.float64)
        opt.step()
        v = opt.state[theta]["exp_avg_sq"]
        psi = torch.sqrt((1 - beta2 ** t) / v)
        var[t - 1] = float(psi.var())
    t = np.arange(1, steps + 1)
    r = rectification(t, beta2)
    return pd.DataFrame({"step": t, "rho": rho(t, beta2), "var_psi": var, "r": r, "var_rectified": r ** 2 * var})


def variance_excess(mc: pd.DataFrame) -> dict[str, float]:
    """Summary of :func:`adaptive_lr_variance` from the first rectified step (ρ_t > 5, where torch's
    RAdam starts rectifying) on: ``t0`` that step, ``late`` the last step's Var[ψ], ``excess``
    Var[ψ_t0] / late, and ``rectified_factor`` the largest factor (either way) between
    Var[r_t ψ_t] and late over the rectified steps."""
    late = mc.var_psi.iloc[-1]
    rectified = mc[mc.rho > 5]
    if rectified.empty:
        raise ValueError("no step with rho_t > 5: run more steps")
    worst = float(np.abs(np.log10(rectified.var_rectified / late)).max())
    return {"excess": float(rectified.var_psi.iloc[0] / late), "rectified_factor": float(10 ** worst),
            "t0": float(rectified.step.iloc[0]), "late": float(late)}
