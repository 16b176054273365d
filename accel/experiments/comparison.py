"""An optimizer comparison with the same tuning for every optimizer (Choi et al. 2019).

The protocol, for each optimizer of the list:

1. **Tune** the learning rate only, on the same ladder for everyone (rates half a decade
   apart, extended until the best one is interior: :func:`accel.experiments.tuning.
   tune_learning_rates`); one run per rate with ``tune_seed``, trained on the training
   part of a split and scored on its held-out part, never on the test set.
2. **Rerun** the best rate with fresh seeds (``seed + seed_offset``), trained on the same
   training samples and evaluated on the test set. All optimizers share those seeds:
   run *s* of every optimizer starts from the same weights and sees the same batches,
   so per-seed differences between optimizers are paired.

Every run is a member of :func:`accel.experiments.members.train_members` (all trials of
a round, then all finals, trained as one vectorized model).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from .members import Split, last, train_members
from .tuning import best_learning_rates, tune_learning_rates


def split_holdout(x: torch.Tensor, y: torch.Tensor, fraction: float = 0.2) -> tuple[Split, Split]:
    """The first ``fraction`` of a training split held out for tuning, the rest to train on."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    n_val = int(round(len(x) * fraction))
    return (x[n_val:], y[n_val:]), (x[:n_val], y[:n_val])


def compare_optimizers(build: Callable[[], torch.nn.Module], train: Split, held_out: Split, test: Split,
                       names: Sequence[str], *, steps: int, batch_size: int, seeds: Sequence[int],
                       tune_seed: int, n: int = 5, step: float = 0.5,
                       centres: Mapping[str, float] | None = None,
                       options: Mapping[str, Mapping[str, Any]] | None = None, max_rounds: int = 4,
                       seed_offset: int = 1000, eval_every: int | None = None,
                       train_eval: int | None = 1000, schedule: dict[str, Any] | None = None
                       ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tune every optimizer's learning rate, then rerun each best rate with fresh seeds.

    Every run uses the same ``schedule`` (an :mod:`accel.schedules` spec) over ``steps``.

    Returns ``(trials, finals)``: one row per trial (``optimizer, lr, score`` = final
    held-out accuracy, ``round``, ``spec``, ``train_loss``, ``train_acc``) and the finals'
    evaluation history (:func:`~accel.experiments.members.train_members` rows with
    ``test_loss``, ``test_acc``, ``seed`` = the base seed *s*).
    """
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {list(seeds)}")
    fits: list[pd.DataFrame] = []

    def run(specs: list[dict[str, Any]]) -> list[float]:
        h = train_members(build, train, [{"spec": s, "seed": tune_seed} for s in specs], steps=steps,
                          batch_size=batch_size, evals={"val": held_out}, eval_every=eval_every,
                          train_eval=train_eval, schedule=schedule)
        end = last(h)
        fits.append(end)
        return end.val_acc.tolist()

    trials = tune_learning_rates(run, names, n=n, step=step, centres=centres, options=options,
                                 max_rounds=max_rounds)
    ends = pd.concat(fits, ignore_index=True)
    trials = trials.merge(ends[["optimizer", "lr", "train_loss", "train_acc"]].drop_duplicates(["optimizer", "lr"]),
                          on=["optimizer", "lr"], how="left")
    best = best_learning_rates(trials)
    members = [{"spec": row.spec, "seed": s + seed_offset, "base_seed": s}
               for _, row in best.iterrows() for s in seeds]
    finals = train_members(build, train, members, steps=steps, batch_size=batch_size, evals={"test": test},
                           eval_every=eval_every, train_eval=train_eval, schedule=schedule)
    finals = finals.assign(seed=finals.pop("base_seed"))
    return trials, finals


def steps_to(history: pd.DataFrame, metric: str, target: float) -> pd.Series:
    """Per member: the first evaluated step at which ``metric`` reaches ``target`` (NaN: never)."""
    out = {}
    for k, h in history.groupby("member"):
        hit = h[h[metric] >= target]
        out[k] = float(hit.step.min()) if len(hit) else np.nan
    return pd.Series(out, name=f"steps to {metric} {target:g}")
