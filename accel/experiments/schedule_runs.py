"""Schedules compared on the same seeds, with a per-update log and the numbers read from it.

Runs of one model under several learning-rate schedules share everything but the
schedule: the seed sets the initial weights and the data order (as in
:func:`accel.training.train_seeds`), so two arms of one seed are identical until their
learning rates first differ and can be compared pairwise. Each run keeps the loss and
the learning rate of every update (:class:`accel.callbacks.StepHistory`), because what
a schedule does happens at particular updates (a cut, a restart) and an epoch mean
averages it away.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import pytorch_lightning as pl

from ..callbacks.history import StepHistory
from ..training import train_seeds


def train_logged(build: Callable[[], pl.LightningModule], datamodule: pl.LightningDataModule, epochs: int,
                 seeds: Iterable[int], *, every: int = 1, **labels: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`~accel.training.train_seeds` with a ``StepHistory(every)`` per seed.

    Returns the per-epoch histories and the per-update logs (``step, epoch, loss, lr``),
    both with a ``seed`` column and ``labels`` as constant columns.
    """
    seeds = list(seeds)
    logs: list[StepHistory] = []

    def callbacks() -> list[pl.Callback]:  # one fresh log per seed, kept to be read afterwards
        logs.append(StepHistory(every=every))
        return [logs[-1]]

    history = train_seeds(build, datamodule, epochs, seeds, callbacks=callbacks, **labels)
    steps = pd.concat([log.frame().assign(seed=s, **labels) for log, s in zip(logs, seeds)], ignore_index=True)
    return history, steps


def loss_jumps(steps: pd.DataFrame, at: Sequence[int], window: int) -> pd.DataFrame:
    """For every seed and every update index ``a`` in ``at``: the mean per-batch loss of
    updates ``[a, a + window)`` (after) and ``[a − window, a)`` (before), and their difference.

    ``a`` is the first update that uses the new rate (a restart, a cut). Rows:
    ``seed, at, before, after, jump``. A window that leaves the log is an error.
    """
    if window < 1:
        raise ValueError(f"window must be a positive number of updates, got {window!r}")
    rows = []
    for seed, log in steps.groupby("seed"):
        loss = log.set_index("step")["loss"]
        for a in at:
            before, after = loss.loc[a - window:a - 1], loss.loc[a:a + window - 1]
            if len(before) != window or len(after) != window:
                raise ValueError(f"seed {seed}: updates {a - window}..{a + window - 1} are not all in the log "
                                 f"(it holds {loss.index.min()}..{loss.index.max()}; log every update)")
            rows.append({"seed": seed, "at": int(a), "before": float(before.mean()), "after": float(after.mean()),
                         "jump": float(after.mean() - before.mean())})
    return pd.DataFrame(rows, columns=["seed", "at", "before", "after", "jump"])


def tail_change(history: pd.DataFrame, metric: str = "train_loss", fraction: float = 0.1,
                by: str | list[str] = "seed") -> pd.DataFrame:
    """The relative change of ``metric`` between the last ``fraction`` of a run's epochs and
    the same number of epochs before them, per run: a converged run's loss is flat (≈ 0).

    ``n = max(1, round(fraction · epochs))`` epochs on each side; rows ``by..., early, late,
    change`` with ``change = late / early − 1`` (−0.05: the loss still fell 5 %).
    """
    if not 0 < fraction <= 0.5:
        raise ValueError(f"fraction must be in (0, 0.5], got {fraction!r}")
    keys = [by] if isinstance(by, str) else list(by)
    rows = []
    for key, run in history.sort_values("epoch", kind="stable").groupby(keys, sort=False):
        values = run[metric].to_numpy(dtype=float)
        n = max(1, int(round(fraction * len(values))))
        if len(values) < 2 * n:
            raise ValueError(f"a run with {len(values)} epochs has no {n} + {n} epochs to compare")
        early, late = float(np.mean(values[-2 * n:-n])), float(np.mean(values[-n:]))
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(keys, key)), "early": early, "late": late, "change": late / early - 1.0})
    return pd.DataFrame(rows, columns=[*keys, "early", "late", "change"])


def trains_count(final: pd.DataFrame, below: float, metric: str = "train_loss", by: str = "method",
                 seed: str = "seed") -> pd.DataFrame:
    """Per ``by`` arm and seed: at how many learning rates of the grid the run *trains*
    (final ``metric`` below ``below``; a diverged, non-finite run does not train)."""
    ok = final.assign(trains=np.isfinite(final[metric]) & (final[metric] < below))
    return ok.groupby([by, seed], as_index=False)["trains"].sum().rename(columns={"trains": "rates"})
