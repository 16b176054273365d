"""Scoring a race, after MLCommons AlgoPerf (Dahl et al. 2023): pure functions of numbers.

- **Time to target** of one trial: the first evaluation whose validation error is at or
  below the workload's target, in optimizer steps (primary: this machine's clock is
  noisy) or in training seconds (evaluation time excluded); ``inf`` when no evaluation
  within the step budget reaches it.
- **External-tuning ruleset**: a submission runs ``N`` trials (quasi-random
  hyper-parameter points) in each of ``M`` independent studies; a study's time is its
  fastest trial; the workload's time is the median over studies (``inf`` counts as the
  slowest value, so a median over mostly-missed studies is ``inf``). A submission whose
  held-out variant of a workload misses its target gets ``inf`` on that workload.
- **Performance profile**: with ``t[s, w]`` the times of submissions ``s`` on workloads
  ``w``, ``r[s, w] = t[s, w] / min_s t[s, w]`` (``inf`` where ``t`` is ``inf``, and for
  everyone where nobody reached the target), and
  ``rho_s(tau) = |{w : r[s, w] <= tau}| / |W|``.
- **Score**: the normalized area under ``rho_s`` from ``tau = 1`` to ``tau_max = 4``,
  ``B_s = 1 / (tau_max - 1) * integral_1^tau_max rho_s(tau) d tau``, in [0, 1] (1: fastest
  everywhere). ``rho_s`` is a step function, so the integral is exact:
  ``B_s = sum_w max(0, tau_max - max(1, r[s, w])) / (|W| (tau_max - 1))``.
"""
from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

import numpy as np

INF = math.inf
TAU_MAX = 4.0


def time_to_target(history: Sequence[Mapping[str, float]], target: float, key: str = "step",
                   metric: str = "error") -> float:
    """The ``key`` (``"step"`` or ``"seconds"``) of the first evaluation with ``metric <= target``; inf if none.

    ``history`` is the evaluations in order, each ``{"step": ..., "seconds": ..., "error": ...}``.
    A non-finite error (a diverged run) never reaches the target.
    """
    for row in history:
        value = row[metric]
        if value is not None and math.isfinite(value) and value <= target:
            return float(row[key])
    return INF


def study_time(trial_times: Iterable[float]) -> float:
    """A study's time: its fastest trial (inf when every trial missed, or there are none)."""
    times = list(trial_times)
    return min(times) if times else INF


def workload_time(study_times: Iterable[float]) -> float:
    """The median over studies (inf sorts last: more than half the studies missing gives inf)."""
    times = sorted(study_times)
    if not times:
        return INF
    n = len(times)
    if n % 2:
        return times[n // 2]
    low, high = times[n // 2 - 1], times[n // 2]
    return INF if math.isinf(high) else (low + high) / 2


def ruleset_time(trials_by_study: Sequence[Sequence[float]], heldout_by_study: Sequence[Sequence[float]] | None = None
                 ) -> float:
    """External tuning: median over studies of the fastest trial; inf if the held-out variant misses."""
    base = workload_time(study_time(s) for s in trials_by_study)
    if heldout_by_study is not None and math.isinf(workload_time(study_time(s) for s in heldout_by_study)):
        return INF
    return base


def ratios(times: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """``times[submission][workload]`` -> the ratio of each to the best submission on that workload.

    Every submission must list the same workloads. Where nobody reached the target the best
    is inf and every ratio is inf.
    """
    subs = list(times)
    if not subs:
        return {}
    workloads = list(times[subs[0]])
    for s in subs:
        if sorted(times[s]) != sorted(workloads):
            raise ValueError(f"submission {s!r} has workloads {sorted(times[s])}, expected {sorted(workloads)}")
    out: dict[str, dict[str, float]] = {s: {} for s in subs}
    for w in workloads:
        best = min(times[s][w] for s in subs)
        for s in subs:
            t = times[s][w]
            if best <= 0 and not math.isinf(best):
                raise ValueError(f"times must be positive, got {best!r} on workload {w!r}")
            out[s][w] = INF if math.isinf(best) or math.isinf(t) else t / best
    return out


def profile(ratio_row: Mapping[str, float], taus: Sequence[float] | np.ndarray) -> np.ndarray:
    """``rho(tau)`` of one submission at each ``tau``: the fraction of workloads with ratio <= tau."""
    r = np.array(list(ratio_row.values()), dtype=float)
    if r.size == 0:
        raise ValueError("no workloads to profile")
    taus = np.asarray(taus, dtype=float)
    return (r[None, :] <= taus[:, None]).mean(axis=1)


def score(ratio_row: Mapping[str, float], tau_max: float = TAU_MAX) -> float:
    """The normalized area under ``rho(tau)`` on [1, tau_max] (exact; see the module doc)."""
    if not tau_max > 1:
        raise ValueError(f"tau_max must be > 1, got {tau_max!r}")
    r = list(ratio_row.values())
    if not r:
        raise ValueError("no workloads to score")
    area = sum(max(0.0, tau_max - max(1.0, x)) for x in r)
    return area / (len(r) * (tau_max - 1))


def scores(times: Mapping[str, Mapping[str, float]], tau_max: float = TAU_MAX) -> dict[str, float]:
    """Every submission's score from the table of workload times."""
    return {s: score(row, tau_max) for s, row in ratios(times).items()}


def speedup(times: Mapping[str, Mapping[str, float]], baseline: str) -> dict[str, dict[str, float]]:
    """Per submission and workload, ``t[baseline, w] / t[s, w]`` (> 1: faster than the baseline).

    inf when only the baseline missed, 0 when only the submission missed, nan when both did.
    """
    if baseline not in times:
        raise ValueError(f"no baseline {baseline!r} among the submissions {sorted(times)}")
    out: dict[str, dict[str, float]] = {}
    for s, row in times.items():
        out[s] = {}
        for w, t in row.items():
            b = times[baseline][w]
            if math.isinf(b) and math.isinf(t):
                out[s][w] = math.nan
            elif math.isinf(t):
                out[s][w] = 0.0
            else:
                out[s][w] = INF if math.isinf(b) else b / t
    return out
