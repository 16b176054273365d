"""A learning rate tuned per arm, on the same half-decade ladder for every arm, optimum inside the grid.

A comparison of speeds is only fair if each arm runs at its own best learning rate
(Krizhevsky et al. 2012 chose "the learning rate for each network ... to make training
as fast as possible"; a mean-shifted input, a sigmoid or a narrow network may just need
a smaller rate). The protocol, as chapter 3's for optimizers
(:func:`accel.experiments.tuning.tune_learning_rates`), but keyed by arm rather than by
optimizer name:

1. train every arm on one *tuning seed* at ``n`` rates ``step`` decades apart around its
   centre, all arms as one call of :func:`accel.experiments.knob_runs.train_arms`;
2. while an arm's best rate is on an edge of its grid, add the rate one step beyond that
   edge (:func:`accel.experiments.tuning.edge_extension`), at most ``max_rounds`` times;
3. the finals then train each arm's best rate on fresh seeds, so no verdict rests on the
   tuning seed.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from .knob_runs import Arm
from .tuning import edge_extension, ladder


def speed_score(steps: float, final_loss: float, max_steps: int) -> float:
    """Higher is faster: minus the steps to the target, ties broken by the lower final loss.

    ``steps`` beyond ``max_steps`` (never reached) all score as ``max_steps + 1``; the loss
    term (at most 1e-6 per unit of loss, capped at 0.5) never outweighs one step. A
    non-finite final loss (diverged) scores NaN.
    """
    if not np.isfinite(final_loss):
        return float("nan")
    return -float(min(steps, max_steps + 1)) - min(1e-6 * float(final_loss), 0.5)


def tune_arms(run: Callable[[list[Arm]], Sequence[float]], arms: Sequence[Arm], *,
              centres: Mapping[str, float], n: int = 5, step: float = 0.5, max_rounds: int = 4
              ) -> pd.DataFrame:
    """Tune each arm's learning rate; ``run(arms)`` trains the arms (each with its rate set) once and
    returns one score per arm (higher is better, NaN for a diverged run).

    ``centres`` maps each arm's name to the centre of its ladder. Rows: ``arm``, ``lr``,
    ``score``, ``round``.
    """
    missing = [a.name for a in arms if a.name not in centres]
    if missing:
        raise ValueError(f"no learning-rate centre for arms {missing}")
    if not isinstance(max_rounds, int) or max_rounds < 0:
        raise ValueError(f"max_rounds must be an int >= 0, got {max_rounds!r}")
    by_name = {a.name: a for a in arms}
    pending = [a.with_lr(lr) for a in arms for lr in ladder(float(centres[a.name]), n, step)]
    rows: list[dict] = []
    for rnd in range(max_rounds + 1):
        scores = list(run(pending))
        if len(scores) != len(pending):
            raise ValueError(f"run() returned {len(scores)} scores for {len(pending)} arms")
        rows += [{"arm": a.name, "lr": float(a.optimizer["lr"]), "score": float(s), "round": rnd}
                 for a, s in zip(pending, scores)]
        table = pd.DataFrame(rows)
        pending = []
        for name, arm in by_name.items():
            t = table[table.arm == name]
            lr = edge_extension(t.lr.to_numpy(), t.score.to_numpy(), step)
            if lr is not None:
                pending.append(arm.with_lr(lr))
        if not pending or rnd == max_rounds:
            break
    return pd.DataFrame(rows).sort_values(["arm", "lr"], kind="stable", ignore_index=True)


def best_rates(trials: pd.DataFrame) -> pd.DataFrame:
    """Per arm (in order of appearance): the best ``lr``, its ``score``, whether it is ``interior``
    to the grid (a neighbour on each side) and the number of ``trials``."""
    rows = []
    for name, t in trials.groupby("arm", sort=False):
        t = t.sort_values("lr")
        s = np.where(np.isfinite(t.score.to_numpy(dtype=float)), t.score.to_numpy(dtype=float), -np.inf)
        best = int(np.argmax(s))
        rows.append({"arm": name, "lr": float(t.lr.iloc[best]), "score": float(s[best]),
                     "interior": bool(0 < best < len(t) - 1 and np.isfinite(s[best])), "trials": len(t)})
    return pd.DataFrame(rows)
