"""Claims from the literature and their verdicts.

A claim is a statement with its source, a criterion written before the run, and a
measured value. Its verdict is computed, never typed in: ``held`` or ``failed``, or
``inconclusive`` when the measurement cannot separate the alternatives (for example a
difference inside the seed spread).
"""
from __future__ import annotations

import math
import operator
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

HELD, FAILED, INCONCLUSIVE = "held", "failed", "inconclusive"
VERDICTS = (HELD, FAILED, INCONCLUSIVE)

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


@dataclass
class Claim:
    id: str
    statement: str
    source: str
    criterion: str
    measured: Any
    verdict: str
    details: dict[str, Any] = field(default_factory=dict)
    chapter: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    @property
    def held(self) -> bool:
        return self.verdict == HELD

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


def threshold(id: str, statement: str, source: str, measured: float, op: str, bound: float,
              *, what: str = "value", **details: Any) -> Claim:
    """Claim that ``measured <op> bound``; a non-finite measurement fails."""
    if op not in _OPS:
        raise ValueError(f"unknown comparison {op!r}; valid: {', '.join(_OPS)}")
    measured = float(measured)
    ok = math.isfinite(measured) and _OPS[op](measured, bound)
    return Claim(id, statement, source, f"{what} {op} {bound:g}", measured,
                 HELD if ok else FAILED, details)


def within(id: str, statement: str, source: str, measured: float, low: float, high: float,
           *, what: str = "value", **details: Any) -> Claim:
    """Claim that ``low <= measured <= high``."""
    measured = float(measured)
    ok = math.isfinite(measured) and low <= measured <= high
    return Claim(id, statement, source, f"{low:g} <= {what} <= {high:g}", measured,
                 HELD if ok else FAILED, details)


def seed_spread(a: Sequence[float], b: Sequence[float]) -> float:
    """The noise scale against which a difference of means is judged.

    The standard error of the difference of two means, sqrt(s_a²/n_a + s_b²/n_b)
    (Welch), with sample standard deviations. NaN with fewer than two seeds per side.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    return float(np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)))


def less_than(id: str, statement: str, source: str, a: Sequence[float], b: Sequence[float],
              *, z: float = 2.0, what: str = "mean(a) - mean(b)", **details: Any) -> Claim:
    """Claim that the quantity sampled over seeds as ``a`` is smaller than ``b``.

    Held when mean(a) < mean(b) by more than ``z`` standard errors; failed when it is
    larger by more than ``z`` standard errors; inconclusive inside the spread (or
    with fewer than two seeds each).
    """
    diff = float(np.mean(a) - np.mean(b))
    se = seed_spread(a, b)
    if not math.isfinite(diff):
        verdict = FAILED
    elif not math.isfinite(se):
        verdict = INCONCLUSIVE
    elif diff < -z * se:
        verdict = HELD
    elif diff > z * se:
        verdict = FAILED
    else:
        verdict = INCONCLUSIVE
    return Claim(id, statement, source, f"{what} < -{z:g}·SE (SE over seeds)", diff, verdict,
                 {"standard_error": se, "n_a": len(a), "n_b": len(b), **details})


def equivalent(id: str, statement: str, source: str, a: Sequence[float], b: Sequence[float],
               *, margin: float, z: float = 2.0, what: str = "|mean(a) - mean(b)|",
               **details: Any) -> Claim:
    """Claim that two seed samples agree: |difference| + z·SE stays below ``margin``.

    Held when even the upper end of the difference's z-interval is inside the margin;
    failed when the lower end is outside it; inconclusive otherwise (too few seeds or
    too much noise to tell).
    """
    diff = abs(float(np.mean(a) - np.mean(b)))
    se = seed_spread(a, b)
    if not math.isfinite(diff):
        verdict = FAILED
    elif not math.isfinite(se):
        verdict = INCONCLUSIVE
    elif diff + z * se < margin:
        verdict = HELD
    elif diff - z * se > margin:
        verdict = FAILED
    else:
        verdict = INCONCLUSIVE
    return Claim(id, statement, source, f"{what} + {z:g}·SE < {margin:g}", diff, verdict,
                 {"standard_error": se, "margin": margin, **details})


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
