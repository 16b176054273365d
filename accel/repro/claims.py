"""Claims from the literature and their verdicts, decided by tests fixed before the run.

A claim has a statement, a source, a criterion and a measured value; its verdict is
computed here, never typed into a notebook: ``held``, ``failed``, or ``inconclusive``
when the data cannot separate the alternatives. Two kinds are kept apart:

* ``claim``: empirical evidence about training, measured on runs over seeds and decided
  by a t-test (Welch's, with Satterthwaite's degrees of freedom; paired where the
  arms share seeds), one-sided at α = 0.025 unless the chapter says otherwise;
* ``check``: an identity, a construction or a deterministic demonstration of a formula,
  which cannot fail short of a bug; shown, but not counted as evidence.

A stochastic result measured on a single run may be shown as an ``illustration``
(reported with the checks, never as evidence).

The policies every claim follows live here:

* **Seeds.** A seed-compared claim needs at least 3 seeds per arm (:data:`MIN_SEEDS`).
* **Non-finite values.** A diverged run (NaN or inf) makes the test undefined; the claim
  is inconclusive and says so, unless the chapter names a ``worst`` value that stands in
  for a diverged run (chance accuracy, the loss at initialization).
* **Censoring.** A measurement that hit its budget is a bound, not a value (``censored``
  marks such runs; the true value is at least the recorded one). A verdict is kept only
  if it would hold for every value consistent with the bounds; otherwise the claim is
  inconclusive and says which runs were censored.
* **No spread.** When every seed gives the same value (or the same paired difference),
  the standard error is 0 and a t-test would claim certainty it has not measured (a
  discrete metric such as accuracy on 1,000 samples ties easily): the claim is inconclusive.
* **Preconditions.** ``requires={"the unguarded run diverged": bool}``: a claim whose
  precondition was not met is inconclusive, naming it.

Every test records n per arm, the test's name, its statistic, degrees of freedom,
p-value, a 95 % interval of the difference and the smallest effect the seeds could have
detected with 80 % power (``mde``), so an inconclusive verdict says whether more seeds
would help.
"""
from __future__ import annotations

import math
import operator
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from . import ttests
from .ttests import Estimate

HELD, FAILED, INCONCLUSIVE = "held", "failed", "inconclusive"
VERDICTS = (HELD, FAILED, INCONCLUSIVE)
CLAIM, CHECK, ILLUSTRATION = "claim", "check", "illustration"
KINDS = (CLAIM, CHECK, ILLUSTRATION)
ALPHA = 0.025
MIN_SEEDS = 3

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
    kind: str = CLAIM
    test: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def held(self) -> bool:
        return self.verdict == HELD

    @property
    def is_evidence(self) -> bool:
        return self.kind == CLAIM

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


# ---------------------------------------------------------------- deterministic comparisons

def threshold(id: str, statement: str, source: str, measured: float, op: str, bound: float, *,
              kind: str, what: str = "value", requires: Mapping[str, bool] | None = None,
              **details: Any) -> Claim:
    """``measured <op> bound`` for one deterministic number: a check, or a single-run illustration.

    Evidence about training needs seeds: use :func:`mean_compare` or a two-arm test.
    A non-finite measurement fails.
    """
    _deterministic_kind(kind, "threshold")
    if op not in _OPS:
        raise ValueError(f"unknown comparison {op!r}; valid: {', '.join(_OPS)}")
    measured = float(measured)
    ok = math.isfinite(measured) and _OPS[op](measured, bound)
    claim = Claim(id, statement, source, f"{what} {op} {bound:g}", measured, HELD if ok else FAILED,
                  dict(details), kind=kind)
    return _apply_requires(claim, requires)


def within(id: str, statement: str, source: str, measured: float, low: float, high: float, *,
           kind: str, what: str = "value", requires: Mapping[str, bool] | None = None,
           **details: Any) -> Claim:
    """``low <= measured <= high`` for one deterministic number (a check or an illustration)."""
    _deterministic_kind(kind, "within")
    if not low <= high:
        raise ValueError(f"need low <= high, got {low} and {high}")
    measured = float(measured)
    ok = math.isfinite(measured) and low <= measured <= high
    claim = Claim(id, statement, source, f"{low:g} <= {what} <= {high:g}", measured, HELD if ok else FAILED,
                  dict(details), kind=kind)
    return _apply_requires(claim, requires)


def _deterministic_kind(kind: str, name: str) -> None:
    if kind not in (CHECK, ILLUSTRATION):
        raise ValueError(f"{name}() decides one number, so its kind must be 'check' (an identity, a construction "
                         f"or a deterministic demonstration) or 'illustration' (a single stochastic run, not "
                         f"evidence); got {kind!r}. Evidence about training needs seeds: use mean_compare, "
                         f"less_than, greater_than, equivalent or not_worse")


# ---------------------------------------------------------------- the t-based tests

def _samples(name: str, x: Sequence[float], worst: float | None) -> tuple[np.ndarray, int]:
    a = np.asarray(x, dtype=float).reshape(-1)
    bad = ~np.isfinite(a)
    if bad.any() and worst is not None:
        a = np.where(bad, float(worst), a)
    return a, int(bad.sum())


def _check_n(arms: dict[str, np.ndarray], paired: bool) -> None:
    for name, a in arms.items():
        if len(a) < MIN_SEEDS:
            raise ValueError(f"arm {name!r} has {len(a)} seed(s); a claim on stochastic runs needs at least "
                             f"{MIN_SEEDS} per arm (or declare a single run an illustration with threshold()/within())")
    if paired and len({len(a) for a in arms.values()}) > 1:
        raise ValueError(f"paired test needs arms of equal length, got {[len(a) for a in arms.values()]}")


def _estimate(a: np.ndarray, b: np.ndarray, paired: bool) -> Estimate:
    return ttests.paired(a, b) if paired else ttests.welch(a, b)


def _prepare(arms: dict[str, Sequence[float]], paired: bool, worst: float | None
             ) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    out, nonfinite = {}, {}
    for name, x in arms.items():
        out[name], nonfinite[name] = _samples(name, x, worst)
    _check_n(out, paired)
    return out, nonfinite


def _finish(id: str, statement: str, source: str, criterion: str, measured: float, verdict: str,
            test: dict[str, Any], details: dict[str, Any], nonfinite: dict[str, int], worst: float | None,
            requires: Mapping[str, bool] | None, censor_note: str | None = None) -> Claim:
    reasons = []
    if any(nonfinite.values()):
        where = ", ".join(f"{n} in {k}" for k, n in nonfinite.items() if n)
        if worst is None:
            verdict = INCONCLUSIVE
            reasons.append(f"non-finite values ({where}): a diverged run has no value to test")
        else:
            test["nonfinite_replaced_by"] = worst
            reasons.append(f"non-finite values ({where}) counted as the worst value {worst:g}")
    if censor_note:
        reasons.append(censor_note)
    if _no_spread(test, measured) and verdict != INCONCLUSIVE:
        verdict = INCONCLUSIVE
        reasons.append("no spread across seeds (every seed gave the same value): the t-test cannot estimate "
                       "the noise; more seeds or a finer measurement would decide it")
    claim = Claim(id, statement, source, criterion, measured, verdict, dict(details), kind=CLAIM, test=test)
    if reasons:
        claim.details["why"] = "; ".join(reasons)
    return _apply_requires(claim, requires)


def _no_spread(test: dict[str, Any], measured: float) -> bool:
    """A standard error at the level of floating-point rounding of the measured difference."""
    se = test.get("se")
    return se is not None and math.isfinite(measured) and se <= 1e-9 * max(abs(measured), 1e-12)


def _censor(verdict: str, censored_a: np.ndarray, censored_b: np.ndarray, a_smaller_claimed: bool
            ) -> tuple[str, str | None]:
    """Keep a verdict only if every value consistent with the lower bounds agrees.

    Censored values are lower bounds (the true value is at least the recorded one).
    For the claim "a < b": a censored ``b`` can only strengthen *held*, a censored ``a``
    can only strengthen *failed*; a verdict the bounds could overturn becomes inconclusive.
    """
    na, nb = int(censored_a.sum()), int(censored_b.sum())
    if not (na or nb):
        return verdict, None
    note = f"{na} + {nb} censored runs (bounds: the true values are at least those recorded)"
    a_side, b_side = (na, nb) if a_smaller_claimed else (nb, na)
    if verdict == HELD and a_side:
        return INCONCLUSIVE, note + "; the claim's side is censored, so 'held' is not established"
    if verdict == FAILED and b_side:
        return INCONCLUSIVE, note + "; the other side is censored, so 'failed' is not established"
    return verdict, note


def _mask(censored: Sequence[bool] | None, n: int) -> np.ndarray:
    if censored is None:
        return np.zeros(n, dtype=bool)
    m = np.asarray(censored, dtype=bool).reshape(-1)
    if len(m) != n:
        raise ValueError(f"censored has {len(m)} entries for {n} values")
    return m


def less_than(id: str, statement: str, source: str, a: Sequence[float], b: Sequence[float], *,
              what: str = "mean(a) − mean(b)", paired: bool = False, alpha: float = ALPHA,
              worst: float | None = None, censored_a: Sequence[bool] | None = None,
              censored_b: Sequence[bool] | None = None, requires: Mapping[str, bool] | None = None,
              **details: Any) -> Claim:
    """The claim that the quantity sampled over seeds as ``a`` is smaller than ``b``.

    Held when a one-sided t-test rejects mean(a) ≥ mean(b) at level ``alpha``; failed when
    the opposite one-sided test rejects mean(a) ≤ mean(b) (``a`` is significantly larger);
    inconclusive otherwise. ``paired``: the arms share seeds (same initialization, same
    data order), so the test is on per-seed differences.
    """
    arms, nonfinite = _prepare({"a": a, "b": b}, paired, worst)
    est = _estimate(arms["a"], arms["b"], paired)
    p_held, p_failed = ttests.p_below(est), ttests.p_above(est)
    verdict = HELD if p_held < alpha else FAILED if p_failed < alpha else INCONCLUSIVE
    verdict, note = _censor(verdict, _mask(censored_a, len(arms["a"])), _mask(censored_b, len(arms["b"])), True)
    test = ttests.summary(est, alpha, p_held, {"alternative": "mean(a) < mean(b)", "p_opposite": p_failed})
    crit = f"{est.test}, one-sided α = {alpha:g}: {what} < 0"
    return _finish(id, statement, source, crit, est.diff, verdict, test, details, nonfinite, worst, requires, note)


def greater_than(id: str, statement: str, source: str, a: Sequence[float], b: Sequence[float], *,
                 what: str = "mean(a) − mean(b)", paired: bool = False, alpha: float = ALPHA,
                 worst: float | None = None, censored_a: Sequence[bool] | None = None,
                 censored_b: Sequence[bool] | None = None, requires: Mapping[str, bool] | None = None,
                 **details: Any) -> Claim:
    """The claim that ``a`` is larger than ``b`` (:func:`less_than` with the roles swapped).

    ``censored_*`` values are lower bounds here too; for "a > b", a censored ``a`` can
    only strengthen *held*.
    """
    arms, nonfinite = _prepare({"a": a, "b": b}, paired, worst)
    est = _estimate(arms["a"], arms["b"], paired)
    p_held, p_failed = ttests.p_above(est), ttests.p_below(est)
    verdict = HELD if p_held < alpha else FAILED if p_failed < alpha else INCONCLUSIVE
    # "a > b" with lower bounds: censored b threatens held, censored a threatens failed.
    verdict, note = _censor(verdict, _mask(censored_b, len(arms["b"])), _mask(censored_a, len(arms["a"])), True)
    test = ttests.summary(est, alpha, p_held, {"alternative": "mean(a) > mean(b)", "p_opposite": p_failed})
    crit = f"{est.test}, one-sided α = {alpha:g}: {what} > 0"
    return _finish(id, statement, source, crit, est.diff, verdict, test, details, nonfinite, worst, requires, note)


def equivalent(id: str, statement: str, source: str, a: Sequence[float], b: Sequence[float], *,
               margin: float, what: str = "mean(a) − mean(b)", paired: bool = False, alpha: float = ALPHA,
               worst: float | None = None, requires: Mapping[str, bool] | None = None,
               **details: Any) -> Claim:
    """The claim that ``a`` and ``b`` agree within ``±margin`` (two one-sided tests, TOST).

    Held when both one-sided tests reject |mean(a) − mean(b)| ≥ margin at level ``alpha``
    (the 1 − 2α interval lies inside ±margin); failed when the difference is significantly
    outside the margin on one side; inconclusive otherwise. The margin is the claim's own
    tolerance, fixed before the run.
    """
    if not margin > 0:
        raise ValueError(f"margin must be positive, got {margin!r}")
    arms, nonfinite = _prepare({"a": a, "b": b}, paired, worst)
    est = _estimate(arms["a"], arms["b"], paired)
    p_lower, p_upper = ttests.p_above(est, -margin), ttests.p_below(est, margin)
    p_tost = max(p_lower, p_upper)
    outside = min(ttests.p_above(est, margin), ttests.p_below(est, -margin))
    verdict = HELD if p_tost < alpha else FAILED if outside < alpha else INCONCLUSIVE
    test = ttests.summary(est, alpha, p_tost, {"alternative": f"|diff| < {margin:g} (TOST)", "margin": margin,
                                         "p_outside": outside})
    crit = f"{est.test} (TOST), α = {alpha:g}: |{what}| < {margin:g}"
    return _finish(id, statement, source, crit, est.diff, verdict, test, details, nonfinite, worst, requires)


def not_worse(id: str, statement: str, source: str, a: Sequence[float], b: Sequence[float], *,
              margin: float, better: str, what: str = "mean(a) − mean(b)", paired: bool = False,
              alpha: float = ALPHA, worst: float | None = None, requires: Mapping[str, bool] | None = None,
              **details: Any) -> Claim:
    """Non-inferiority: ``a`` matches or exceeds ``b``, losing at most ``margin``.

    ``better`` says which direction is better ("lower" for a loss or an error, "higher"
    for an accuracy). Held when a one-sided test rejects "a is worse than b by the margin
    or more"; failed when a is significantly worse than b by more than the margin;
    inconclusive otherwise. A baseline that wins by a wide margin is held, as "match or
    exceed" says (Nado et al. 2021).
    """
    if better not in ("lower", "higher"):
        raise ValueError(f"better must be 'lower' or 'higher', got {better!r}")
    if not margin >= 0:
        raise ValueError(f"margin must be >= 0, got {margin!r}")
    arms, nonfinite = _prepare({"a": a, "b": b}, paired, worst)
    est = _estimate(arms["a"], arms["b"], paired)
    if better == "lower":   # worse means larger: claim diff < margin
        p_held, p_failed = ttests.p_below(est, margin), ttests.p_above(est, margin)
        crit_op = f"< {margin:g}"
    else:                   # worse means smaller: claim diff > −margin
        p_held, p_failed = ttests.p_above(est, -margin), ttests.p_below(est, -margin)
        crit_op = f"> −{margin:g}"
    verdict = HELD if p_held < alpha else FAILED if p_failed < alpha else INCONCLUSIVE
    test = ttests.summary(est, alpha, p_held, {"alternative": f"{what} {crit_op} (non-inferiority)", "margin": margin,
                                         "better": better, "p_opposite": p_failed})
    crit = f"{est.test}, one-sided α = {alpha:g}, non-inferiority: {what} {crit_op}"
    return _finish(id, statement, source, crit, est.diff, verdict, test, details, nonfinite, worst, requires)


def mean_compare(id: str, statement: str, source: str, samples: Sequence[float], op: str, bound: float, *,
                 what: str = "mean", alpha: float = ALPHA, worst: float | None = None,
                 censored: Sequence[bool] | None = None, requires: Mapping[str, bool] | None = None,
                 **details: Any) -> Claim:
    """The claim that the seed mean of ``samples`` is on the ``op`` side of ``bound`` (one-sample t-test).

    Held when the one-sided test rejects the other side at level ``alpha``; failed when the
    mean is significantly on the wrong side; inconclusive otherwise. ``censored`` values
    are lower bounds.
    """
    if op not in _OPS:
        raise ValueError(f"unknown comparison {op!r}; valid: {', '.join(_OPS)}")
    arms, nonfinite = _prepare({"samples": samples}, False, worst)
    x = arms["samples"]
    est = ttests.one_sample(x, bound)
    below = op in ("<", "<=")
    p_held, p_failed = (ttests.p_below(est), ttests.p_above(est)) if below else (ttests.p_above(est), ttests.p_below(est))
    verdict = HELD if p_held < alpha else FAILED if p_failed < alpha else INCONCLUSIVE
    mask, none = _mask(censored, len(x)), np.zeros(0, dtype=bool)
    verdict, note = _censor(verdict, mask, none, True) if below else _censor(verdict, none, mask, True)
    test = ttests.summary(est, alpha, p_held, {"alternative": f"{what} {op} {bound:g}", "bound": bound,
                                         "p_opposite": p_failed, "mean": float(x.mean())})
    crit = f"{est.test}, one-sided α = {alpha:g}: {what} {op} {bound:g}"
    return _finish(id, statement, source, crit, float(x.mean()), verdict, test, details, nonfinite, worst,
                   requires, note)


def mean_within(id: str, statement: str, source: str, samples: Sequence[float], low: float, high: float, *,
                what: str = "mean", alpha: float = ALPHA, worst: float | None = None,
                requires: Mapping[str, bool] | None = None, **details: Any) -> Claim:
    """The claim that the seed mean lies in ``[low, high]``: both one-sided tests must reject
    the outside (held); the mean significantly outside one end fails; else inconclusive."""
    if not low < high:
        raise ValueError(f"need low < high, got {low} and {high}")
    arms, nonfinite = _prepare({"samples": samples}, False, worst)
    x = arms["samples"]
    lo, hi = ttests.one_sample(x, low), ttests.one_sample(x, high)
    p_held = max(ttests.p_above(lo), ttests.p_below(hi))
    p_failed = min(ttests.p_below(lo), ttests.p_above(hi))
    verdict = HELD if p_held < alpha else FAILED if p_failed < alpha else INCONCLUSIVE
    test = ttests.summary(lo, alpha, p_held, {"alternative": f"{low:g} < {what} < {high:g}", "low": low, "high": high,
                                        "p_outside": p_failed, "mean": float(x.mean())})
    test["test"] = "one-sample t-tests (both ends)"
    crit = f"two one-sided t-tests, α = {alpha:g}: {low:g} < {what} < {high:g}"
    return _finish(id, statement, source, crit, float(x.mean()), verdict, test, details, nonfinite, worst, requires)


# ---------------------------------------------------------------- preconditions, helpers

def _apply_requires(claim: Claim, requires: Mapping[str, bool] | None) -> Claim:
    """A claim whose precondition was not met is inconclusive, naming the precondition."""
    unmet = [name for name, ok in (requires or {}).items() if not bool(ok)]
    if unmet:
        claim.details["unmet_precondition"] = unmet
        claim.details["why"] = "; ".join(filter(None, [claim.details.get("why"),
                                                        "precondition not met: " + ", ".join(unmet)]))
        claim.verdict = INCONCLUSIVE
    return claim


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
