"""The t-based statistics behind every seed-compared claim (scipy's t distribution).

An :class:`Estimate` is a difference of means (or a mean minus a bound) with its
standard error and degrees of freedom: Welch's unequal-variance form with
Satterthwaite's degrees of freedom for independent arms, the per-seed differences for
paired arms (same seeds, same data order), one sample against a bound. One-sided
p-values, the matching interval and the smallest effect detectable with the given
power follow from it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

POWER = 0.8


@dataclass(frozen=True)
class Estimate:
    """A difference (or a mean) with its standard error and degrees of freedom."""
    diff: float
    se: float
    df: float
    n: tuple[int, ...]
    test: str


def _t() -> Any:
    from scipy import stats
    return stats.t


def welch(a: np.ndarray, b: np.ndarray) -> Estimate:
    """mean(a) − mean(b), its Welch standard error and Satterthwaite's degrees of freedom."""
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) if se > 0 else float(len(a) + len(b) - 2)
    return Estimate(float(a.mean() - b.mean()), se, df, (len(a), len(b)), "Welch t-test")


def paired(a: np.ndarray, b: np.ndarray) -> Estimate:
    d = a - b
    return Estimate(float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d))), float(len(d) - 1),
                     (len(a), len(b)), "paired t-test")


def one_sample(a: np.ndarray, bound: float) -> Estimate:
    return Estimate(float(a.mean() - bound), float(a.std(ddof=1) / math.sqrt(len(a))), float(len(a) - 1),
                     (len(a),), "one-sample t-test")


def p_below(est: Estimate, shift: float = 0.0) -> float:
    """One-sided p-value for H1: diff < shift."""
    if est.se == 0:
        return 0.0 if est.diff < shift else 1.0
    return float(_t().cdf((est.diff - shift) / est.se, est.df))


def p_above(est: Estimate, shift: float = 0.0) -> float:
    """One-sided p-value for H1: diff > shift."""
    if est.se == 0:
        return 0.0 if est.diff > shift else 1.0
    return float(_t().sf((est.diff - shift) / est.se, est.df))


def summary(est: Estimate, alpha: float, p: float, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    t = _t()
    q = t.ppf(1 - alpha, est.df) if est.se > 0 else 0.0
    mde = (t.ppf(1 - alpha, est.df) + t.ppf(POWER, est.df)) * est.se
    return {"test": est.test, "n": list(est.n), "alpha": alpha, "df": est.df, "se": est.se,
            "statistic": est.diff / est.se if est.se > 0 else math.copysign(math.inf, est.diff or 1.0),
            "p_value": p, "ci_low": est.diff - q * est.se, "ci_high": est.diff + q * est.se,
            "ci_level": 1 - 2 * alpha, "mde": mde, **(extra or {})}
