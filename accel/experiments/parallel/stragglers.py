"""Stragglers: synchronous data parallelism waits for its slowest process every step.

Each step, every process does its work (here a sleep of a drawn length: the injected
delay), then joins an all-reduce of a gradient-sized buffer, which cannot finish before
the last process arrives. So the step time is the *maximum* of the processes' work times
plus the all-reduce, not their mean (Dean et al. 2012; Chen et al. 2016). With ``p``
processes drawing i.i.d. delays, the expected maximum grows with ``p`` (for exponential
delays of mean τ it is τ·H_p, the p-th harmonic number): :func:`simulate_steps` draws it
from a measured distribution to extend the curve past the processes this machine has.

The work is a sleep, not computation, so that more processes than cores can run without
competing for them: what is measured is the synchronization, not the machine's load.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from .launch import launch

DISTRIBUTIONS = ("fixed", "exponential", "lognormal")


@dataclass(frozen=True)
class Delay:
    """A delay in seconds: ``base`` plus a draw of mean ``mean`` from ``distribution``.

    ``lognormal`` has log-standard-deviation ``sigma`` (a heavy right tail); ``fixed``
    always adds ``mean``. ``mean = 0`` (no injected delay) is allowed.
    """
    distribution: str = "exponential"
    mean: float = 0.0
    base: float = 0.0
    sigma: float = 1.0

    def __post_init__(self) -> None:
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(f"unknown distribution {self.distribution!r}; valid: {', '.join(DISTRIBUTIONS)}")
        if not (self.mean >= 0 and self.base >= 0 and self.sigma > 0):
            raise ValueError(f"need mean >= 0, base >= 0 and sigma > 0, got {self}")

    def sample(self, rng: np.random.Generator, size: int | None = None) -> np.ndarray | float:
        if self.distribution == "fixed" or self.mean == 0:
            extra = np.full(size, self.mean) if size is not None else self.mean
        elif self.distribution == "exponential":
            extra = rng.exponential(self.mean, size)
        else:  # lognormal with the requested mean: exp(mu + sigma²/2) = mean
            mu = np.log(self.mean) - self.sigma ** 2 / 2
            extra = rng.lognormal(mu, self.sigma, size)
        return self.base + extra


def straggler_steps(rank: int, delays: dict[int, Delay], steps: int, nbytes: int, seed: int,
                    group=None, warmup: int = 2) -> list[dict]:
    """Run ``steps`` synchronous steps: sleep a drawn delay (``delays`` per rank; a rank not
    named sleeps nothing), then all-reduce ``nbytes``. Every rank of ``group`` calls it.

    Returns, per step, this rank's ``work`` (seconds from the step's start to the start of
    its all-reduce) and ``step`` (start to the end of the all-reduce).
    """
    rng = np.random.default_rng([seed, rank])
    delay = delays.get(rank, Delay("fixed", 0.0))
    buf = torch.zeros(max(1, nbytes // 4))
    rows = []
    for _ in range(warmup):
        dist.all_reduce(buf, group=group)
    dist.barrier(group=group)
    for s in range(steps):
        t0 = time.perf_counter()
        d = float(delay.sample(rng))
        if d > 0:
            time.sleep(d)
        t1 = time.perf_counter()
        dist.all_reduce(buf, group=group)
        t2 = time.perf_counter()
        rows.append(dict(step_index=s, rank=rank, work=t1 - t0, step=t2 - t0))
    return rows


def simulate_steps(work: np.ndarray, p: int, overhead: float, steps: int, rng: np.random.Generator) -> np.ndarray:
    """Step times of ``p`` synchronous processes whose work times are drawn (with replacement)
    from the measured ``work`` samples: the maximum over processes plus ``overhead``."""
    work = np.asarray(work, dtype=float)
    if work.ndim != 1 or len(work) == 0:
        raise ValueError("need a non-empty 1-D sample of work times")
    if p < 1 or steps < 1:
        raise ValueError(f"need p >= 1 and steps >= 1, got p={p}, steps={steps}")
    return rng.choice(work, size=(steps, p)).max(axis=1) + overhead


def expected_max_exponential(p: int, mean: float) -> float:
    """E[max of p i.i.d. exponential draws of mean ``mean``] = mean · H_p."""
    return mean * float(np.sum(1.0 / np.arange(1, p + 1)))


def scaling_session(rank: int, world: int, sizes: list[int], delay: Delay, steps: int, nbytes: int,
                    repeats: int, seed: int) -> list[dict]:
    """Straggler runs on the first ``p`` ranks for each ``p`` in ``sizes`` (one launch of
    ``world = max(sizes)`` processes; the others wait at a barrier). Every rank of a group
    draws its delay i.i.d. from ``delay``; each repeat also runs the group without delays
    (the all-reduce's own time), interleaved."""
    groups = {p: dist.new_group(list(range(p))) for p in sizes}  # every rank creates every group
    rows = []
    for r in range(repeats):
        order = sizes[r % len(sizes):] + sizes[:r % len(sizes)]
        for p in order:
            for arm in (("no delay", "all delayed") if r % 2 == 0 else ("all delayed", "no delay")):
                if rank < p:
                    delays = {q: delay for q in range(p)} if arm == "all delayed" else {}
                    for row in straggler_steps(rank, delays, steps, nbytes, seed + 1000 * r + p,
                                               group=groups[p]):
                        rows.append(dict(row, repeat=r, arm=arm, processes=p))
                dist.barrier()
    return rows


def run_scaling(sizes: list[int], delay: Delay, steps: int, nbytes: int, repeats: int, seed: int,
                timeout: float = 300.0) -> list[dict]:
    """:func:`scaling_session` in ``max(sizes)`` launched processes; all ranks' rows."""
    if not sizes or min(sizes) < 2:
        raise ValueError(f"need group sizes of at least 2 processes, got {sizes}")
    parts = launch(scaling_session, max(sizes), (sorted(sizes), delay, steps, nbytes, repeats, seed),
                   timeout=timeout)
    return [row for part in parts for row in part]
