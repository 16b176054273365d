"""Does the best learning rate move with width? SP against µP (Yang et al. 2022), for Adam.

An arm is a parametrization at a width, ``"sp@128"`` or ``"mup@128"``
(:class:`accel.models.mup_mlp.WidthMLP`, µP relative to the smallest width). Each arm's
rate is tuned by :func:`accel.experiments.recent.tune` on one ladder, extended until its
optimum is interior; a trial trains the arm's model with each tuning seed (every rate of a
round and every seed as one stacked model: Adam without weight decay is per scalar, and
the multiplier form of µP trains every layer at one rate) with the recent-methods
chapter's cosine schedule and warm-up, and scores minus the mean training loss at the end
(µP's claim is about the training loss, Yang et al. 2022, Fig. 1). :func:`shift_steps`
says how far the optimum moved between two widths, in ladder steps; the finals
(:func:`train_at`) train chosen (arm, rate) pairs on fresh seeds.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import pandas as pd
from torch import nn

from ..models.mup_mlp import PARAMETRIZATIONS, WidthMLP
from .recent import make_arm
from .recent_stacked import Split, train_arms


def arm_name(parametrization: str, width: int) -> str:
    return f"{parametrization}@{int(width)}"


def parse_arm(arm: str) -> tuple[str, int]:
    """``"mup@128"`` → ("mup", 128); a malformed name is an error naming the form."""
    p, _, w = arm.partition("@")
    if p not in PARAMETRIZATIONS or not w.isdigit():
        raise ValueError(f"arm must be '<parametrization>@<width>' with parametrization in "
                         f"{', '.join(PARAMETRIZATIONS)}, got {arm!r}")
    return p, int(w)


def builder(arm: str, *, n_in: int, n_out: int, base_width: int, depth: int = 2) -> Callable[[], nn.Module]:
    p, w = parse_arm(arm)
    return lambda: WidthMLP(n_in, w, n_out, parametrization=p, base_width=base_width, depth=depth)


def train_at(train: Split, pairs: Sequence[tuple[str, float]], seeds: Sequence[int], *, steps: int, warmup: int,
             batch_size: int, n_in: int, n_out: int, base_width: int, depth: int = 2,
             evals: dict[str, Split] | None = None) -> pd.DataFrame:
    """Train each (arm, lr) of ``pairs`` with every seed (AdamW without decay, cosine schedule
    with ``warmup``); the rows at the end of the runs, with ``trial`` = the pair's index and
    ``parametrization``/``width`` columns. Pairs of the same arm are stacked into one model."""
    if not pairs:
        raise ValueError("no (arm, lr) pairs to train")
    out = []
    by_arm: dict[str, list[int]] = {}
    for i, (arm, _) in enumerate(pairs):
        by_arm.setdefault(arm, []).append(i)
    for arm, idx in by_arm.items():
        p, w = parse_arm(arm)
        arms = [make_arm("cosine", pairs[i][1], seeds, steps, warmup=warmup, weight_decay=0.0, label=f"{i}")
                for i in idx]
        rows, _ = train_arms(builder(arm, n_in=n_in, n_out=n_out, base_width=base_width, depth=depth), train,
                             arms, batch_size=batch_size, evals=evals)
        rows = rows[rows.step == steps]
        out.append(rows.assign(trial=rows.arm.astype(int), parametrization=p, width=w, arm=arm))
    return pd.concat(out, ignore_index=True).sort_values(["trial", "seed"], ignore_index=True)


def width_scorer(train: Split, *, seeds: Sequence[int], steps: int, warmup: int, batch_size: int, n_in: int,
                 n_out: int, base_width: int, depth: int = 2) -> Callable[[list[tuple[str, float]]], list[float]]:
    """A ``score`` for :func:`accel.experiments.recent.tune`: minus the mean (over ``seeds``)
    training loss at the end of each (arm, lr) trial (NaN: diverged)."""
    def score(trials: list[tuple[str, float]]) -> list[float]:
        rows = train_at(train, trials, seeds, steps=steps, warmup=warmup, batch_size=batch_size, n_in=n_in,
                        n_out=n_out, base_width=base_width, depth=depth)
        loss = rows.groupby("trial").train_loss.mean()   # NaN if any seed diverged
        return [-float(loss[i]) for i in range(len(trials))]
    return score


def shift_steps(lr_from: float, lr_to: float, step: float) -> float:
    """How many ladder steps (``step`` decades each) the best rate moved from ``lr_from`` to
    ``lr_to``: positive when it moved down (smaller rates at the second width)."""
    if not (lr_from > 0 and lr_to > 0 and step > 0):
        raise ValueError(f"rates and step must be positive, got {lr_from!r}, {lr_to!r}, {step!r}")
    return round(math.log10(lr_from / lr_to) / step, 6)


def with_base(table: pd.DataFrame, base_width: int, column: str = "optimizer") -> pd.DataFrame:
    """``table`` (trials or best rates, arm names in ``column``) with the µP arm at the base width
    added as a copy of the SP arm there: at ``base_width`` the two are the same network."""
    sp, mup = arm_name("sp", base_width), arm_name("mup", base_width)
    if (table[column] == mup).any():
        return table
    return pd.concat([table, table[table[column] == sp].assign(**{column: mup})], ignore_index=True)


def tuned_table(best: pd.DataFrame) -> pd.DataFrame:
    """:func:`accel.experiments.tuning.best_learning_rates` of width arms, with ``parametrization``,
    ``width`` and the training loss (minus the score) as columns."""
    parsed = [parse_arm(a) for a in best.optimizer]
    return best.assign(parametrization=[p for p, _ in parsed], width=[w for _, w in parsed],
                       train_loss=-best.score).sort_values(["parametrization", "width"], ignore_index=True)


def centres(widths: Sequence[int], centre: float) -> dict[str, Any]:
    """The same ladder centre for every arm to tune: SP at every width, µP above the smallest
    (at the smallest, µP is SP: :func:`with_base` copies it)."""
    if len(widths) < 2 or sorted(set(widths)) != list(widths):
        raise ValueError(f"widths must be at least two increasing ints, got {list(widths)}")
    return {**{arm_name("sp", w): centre for w in widths}, **{arm_name("mup", w): centre for w in widths[1:]}}
