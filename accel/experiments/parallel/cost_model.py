"""The α–β (latency–bandwidth) cost model of communication, and the step times it predicts.

Sending ``n`` bytes costs ``t(n) = α + β·n``: α the latency of one message, β the time
per byte (1/β the bandwidth) (Hockney 1994). A ring all-reduce over ``p`` processes sends
``p − 1`` chunks of ``n/p`` bytes in a reduce-scatter and ``p − 1`` more in an all-gather,
so it costs ``2(p − 1)·α + 2(p − 1)/p·n·β`` (Thakur, Rabenseifner & Gropp 2005; Patarasuk
& Yuan 2009): the bandwidth term barely grows with ``p``, the latency term does.

Step-time models built on it (no overlap of communication with compute, so upper bounds
on the exposed communication):

- data parallelism: each of ``d`` replicas computes ``1/d`` of the batch, then all-reduces
  every gradient (:func:`data_parallel_step`);
- pipeline (model) parallelism: ``p`` balanced stages and ``m`` micro-batches; GPipe's
  schedule takes ``m + p − 1`` slots of one micro-batch's stage time, idle a fraction
  ``(p − 1)/(m + p − 1)`` of it (Huang et al. 2019), plus the activations (forward) and
  their gradients (backward) sent across each cut (:func:`pipeline_step`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.optimize import nnls


@dataclass(frozen=True)
class AlphaBeta:
    """Latency ``alpha`` (s) and time per byte ``beta`` (s/B)."""
    alpha: float
    beta: float

    def __call__(self, nbytes: float | np.ndarray) -> float | np.ndarray:
        return self.alpha + self.beta * np.asarray(nbytes, dtype=float)

    @property
    def bandwidth(self) -> float:
        """Bytes per second (1/β)."""
        return 1.0 / self.beta if self.beta > 0 else float("inf")


def fit_alpha_beta(nbytes: Sequence[float], seconds: Sequence[float]) -> AlphaBeta:
    """Fit ``t = α + β·n`` by least squares on *relative* errors, with α, β ≥ 0.

    Message sizes span orders of magnitude; an absolute fit would let the largest
    messages decide α. Minimizing Σ((α + β nᵢ − tᵢ)/tᵢ)² weighs every size alike.
    """
    n = np.asarray(nbytes, dtype=float)
    t = np.asarray(seconds, dtype=float)
    if n.shape != t.shape or n.ndim != 1:
        raise ValueError(f"need two 1-D sequences of equal length, got shapes {n.shape} and {t.shape}")
    if not (np.all(np.isfinite(n)) and np.all(np.isfinite(t))):
        raise ValueError("sizes and times must be finite")
    if np.any(t <= 0) or np.any(n < 0):
        raise ValueError("times must be positive and sizes non-negative")
    if len(np.unique(n)) < 2:
        raise ValueError("need at least two distinct message sizes to separate α from β")
    design = np.column_stack([1.0 / t, n / t])
    (alpha, beta), _ = nnls(design, np.ones_like(t))
    return AlphaBeta(float(alpha), float(beta))


def relative_errors(model: AlphaBeta, nbytes: Sequence[float], seconds: Sequence[float]) -> np.ndarray:
    """``(model(n) − t)/t`` for each measurement."""
    t = np.asarray(seconds, dtype=float)
    return (model(nbytes) - t) / t


def ring_allreduce(p: int, nbytes: float, link: AlphaBeta) -> float:
    """Seconds of a ring all-reduce of ``nbytes`` over ``p`` processes on links ``link``."""
    if p < 1:
        raise ValueError(f"need p >= 1 processes, got {p}")
    if p == 1:
        return 0.0
    return 2 * (p - 1) * link.alpha + 2 * (p - 1) / p * nbytes * link.beta


def gpipe_bubble(p: int, m: int) -> float:
    """Idle fraction of GPipe's schedule: ``(p − 1)/(m + p − 1)`` for p stages and m micro-batches."""
    if p < 1 or m < 1:
        raise ValueError(f"need p >= 1 stages and m >= 1 micro-batches, got p={p}, m={m}")
    return (p - 1) / (m + p - 1)


def data_parallel_step(compute: float, d: int, grad_bytes: float, link: AlphaBeta) -> float:
    """Seconds per step: ``compute`` (one device, the whole batch) split over ``d`` replicas,
    then a ring all-reduce of the gradients."""
    if d < 1:
        raise ValueError(f"need d >= 1 replicas, got {d}")
    return compute / d + ring_allreduce(d, grad_bytes, link)


def pipeline_step(compute: float, p: int, m: int, cut_bytes: float, link: AlphaBeta) -> float:
    """Seconds per step of a balanced ``p``-stage GPipe pipeline with ``m`` micro-batches.

    ``compute`` is one device's time for the whole batch; ``cut_bytes`` the activation
    bytes of the whole batch crossing one cut (sent forward, and its gradient backward,
    in ``m`` messages). The transfers on the critical path: one per cut and direction
    for the first and last micro-batch, the rest overlap with compute.
    """
    if p < 1 or m < 1:
        raise ValueError(f"need p >= 1 stages and m >= 1 micro-batches, got p={p}, m={m}")
    slots = (m + p - 1) / m * compute / p
    transfers = 2 * (p - 1) * link(cut_bytes / m) if p > 1 else 0.0
    return float(slots + transfers)
