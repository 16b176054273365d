"""Large-batch experiments: a learning rate carried from a small batch to large ones, and steps to a target.

A *recipe* says how a rate ``lr0`` that suits ``base_batch`` is carried to a batch ``B``
(Goyal et al. 2017): ``"none"`` keeps it, ``"linear"`` multiplies it by ``k = B/base_batch``,
``"sqrt"`` by √k (the rule argued for adaptive methods). A gradual warm-up ramps the rate
linearly from the small-batch rate ``lr0`` to ``k·lr0`` over the first ``warmup_fraction``
of the run (Goyal et al.: the first 5 of 90 epochs), then a cosine decay runs to zero.
Every run gets the same number of epochs, so a larger batch takes fewer steps.

All runs of one batch size are members of one vectorized model
(:func:`accel.experiments.members.train_members`): the recipes and seeds at that batch,
grouped by schedule. Members with the same seed start from the same weights and see the
same batches, so recipes are compared paired by seed.

Steps to a target accuracy (Shallue et al. 2019) are read from the evaluations every
``1/n_evals`` of a run; a run that never reaches the target is *censored*: its true
count is larger than the budget it used (a lower bound).
"""
from __future__ import annotations

import json
import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ..schedules import linear_scaling
from .members import Split, train_members

SCALINGS = ("none", "linear", "sqrt")
GOYAL_WARMUP = 5 / 90   # Goyal et al. 2017: warm-up over the first 5 of 90 epochs


def scaled_lr(base_lr: float, batch: int, base_batch: int, scaling: str) -> float:
    """The learning rate at ``batch`` for a rate ``base_lr`` that suits ``base_batch``."""
    if scaling not in SCALINGS:
        raise ValueError(f"unknown scaling {scaling!r}; valid: {', '.join(SCALINGS)}")
    if scaling == "linear":
        return linear_scaling(base_lr, batch, base_batch)
    if scaling == "sqrt":
        return base_lr * math.sqrt(batch / base_batch)
    return base_lr


def steps_per_epoch(n: int, batch: int, drop_last: bool = True) -> int:
    return n // batch if drop_last else math.ceil(n / batch)


def run_steps(n_train: int, batch: int, epochs: int) -> int:
    """Optimizer steps of ``epochs`` epochs at ``batch`` (the last incomplete batch dropped)."""
    per_epoch = steps_per_epoch(n_train, batch)
    if per_epoch < 1:
        raise ValueError(f"batch {batch} exceeds the {n_train} training samples")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    return per_epoch * epochs


def warmup_schedule(batch: int, base_batch: int, steps: int, warmup_fraction: float = GOYAL_WARMUP
                    ) -> dict[str, Any]:
    """Cosine decay after a linear warm-up from the small-batch rate (factor ``base_batch/batch``)
    over the first ``warmup_fraction`` of ``steps`` (Goyal et al. 2017, §2.2). At ``base_batch``
    the warm-up would be constant, so it is left out."""
    if not 0 <= warmup_fraction < 1:
        raise ValueError(f"warmup_fraction must be in [0, 1), got {warmup_fraction!r}")
    start = min(1.0, base_batch / batch)
    warm = min(int(round(warmup_fraction * steps)), steps - 1)
    if start == 1.0 or warm < 1:
        return {"name": "cosine"}
    return {"name": "cosine", "warmup_steps": warm, "warmup_start_factor": start}


def recipe_arms(batch: int, base_batch: int, base_lr: float, *, factors: Sequence[float], seeds: Sequence[int],
                factor_seeds: Mapping[float, Sequence[int]] | None = None, steps: int,
                optimizer: str = "momentum", warmup_fraction: float = GOYAL_WARMUP) -> list[dict[str, Any]]:
    """The runs at ``batch``: "linear + warm-up" at ``factor`` × the linearly scaled rate for each
    of ``factors`` (a per-batch tuning grid, Shallue et al. 2019), and, above ``base_batch``,
    "no scaling" (``base_lr``) and "linear" (scaled, no warm-up), both with cosine decay.
    ``factor_seeds[f]`` overrides ``seeds`` for factor ``f`` and for the two recipes without
    warm-up (``factor_seeds[1.0]``)."""
    factor_seeds = dict(factor_seeds or {})
    k = batch / base_batch
    linear = base_lr * k
    warm = warmup_schedule(batch, base_batch, steps, warmup_fraction)
    arms = [{"recipe": "linear + warm-up", "factor": float(f), "spec": {"name": optimizer, "lr": linear * f},
             "schedule": warm, "seeds": list(factor_seeds.get(f, seeds))} for f in factors]
    if batch > base_batch:
        main = list(factor_seeds.get(1.0, seeds))
        arms += [{"recipe": "no scaling", "factor": 1 / k, "spec": {"name": optimizer, "lr": base_lr},
                  "schedule": {"name": "cosine"}, "seeds": main},
                 {"recipe": "linear", "factor": 1.0, "spec": {"name": optimizer, "lr": linear},
                  "schedule": {"name": "cosine"}, "seeds": main}]
    return arms


def train_arms(build: Callable[[], torch.nn.Module], train: Split, arms: Sequence[Mapping[str, Any]], *,
               batch: int, steps: int, evals: Mapping[str, Split], n_evals: int = 12,
               train_eval: int | None = 1000) -> pd.DataFrame:
    """Every arm (``{"spec", "schedule", "seeds", **labels}``) at ``batch`` for ``steps`` steps: one
    :func:`~accel.experiments.members.train_members` call per distinct schedule; the rows
    carry the arm's labels, ``batch`` and ``steps_total``."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for arm in arms:
        groups.setdefault(json.dumps(arm["schedule"], sort_keys=True), []).append(arm)
    frames = []
    for key, group in groups.items():
        members = [{"spec": dict(a["spec"]), "seed": int(s),
                    **{k: v for k, v in a.items() if k not in ("spec", "schedule", "seeds")}}
                   for a in group for s in a["seeds"]]
        h = train_members(build, train, members, steps=steps, batch_size=batch, evals=evals,
                          eval_every=max(1, steps // n_evals), train_eval=train_eval, schedule=json.loads(key))
        frames.append(h.assign(member=h.member + sum(len(f.member.unique()) for f in frames)))
    return pd.concat(frames, ignore_index=True).assign(batch=batch, steps_total=steps)


def final_rows(history: pd.DataFrame) -> pd.DataFrame:
    """One row per run (batch, member): its last evaluation."""
    return history.sort_values("step", kind="stable").groupby(["batch", "member"]).tail(1).reset_index(drop=True)


def steps_to_target(history: pd.DataFrame, target: float, metric: str = "val_acc") -> pd.DataFrame:
    """Per run (batch, member): the first evaluated step with ``metric`` >= ``target``. A run that
    never reaches it gets its budget (``steps_total``) and ``reached=False``: censored, the true
    value is larger. Columns: the run's labels, ``steps``, ``reached``."""
    keys = [c for c in ("batch", "recipe", "factor", "tuning", "member", "seed", "steps_total") if c in history]
    rows = []
    for key, run in history.groupby(["batch", "member"], sort=True):
        first = run.iloc[0]
        hit = run[run[metric] >= target]
        reached = len(hit) > 0
        rows.append({**{k: first[k] for k in keys}, "steps": float(hit.step.min()) if reached
                     else float(first["steps_total"]), "reached": reached})
    return pd.DataFrame(rows)


def fastest_factor(table: pd.DataFrame, recipe: str = "linear + warm-up") -> pd.DataFrame:
    """Per batch, the grid factor of ``recipe`` with the fewest seed-mean steps to target, preferring
    factors whose every seed reached it (Shallue et al.: the best trial of the search).
    Columns: ``batch``, ``factor``, ``steps`` (seed mean), ``reached`` (all seeds),
    ``interior`` (the factor is neither the smallest nor the largest tried), ``grid`` (factors tried)."""
    rows = []
    for batch, t in table[table.recipe == recipe].groupby("batch"):
        g = t.groupby("factor").agg(steps=("steps", "mean"), reached=("reached", "all")).reset_index()
        best = g.sort_values(["reached", "steps"], ascending=[False, True]).iloc[0]
        factors = sorted(g.factor)
        rows.append({"batch": int(batch), "factor": float(best.factor), "steps": float(best.steps),
                     "reached": bool(best.reached), "interior": factors[0] < best.factor < factors[-1],
                     "grid": factors})
    return pd.DataFrame(rows)


def next_factor(best: Mapping[str, Any], step: float = 2.0) -> float | None:
    """The factor one ``step`` beyond the grid's edge when the fastest factor sits on it, else None."""
    grid = list(best["grid"])
    if best["factor"] == min(grid):
        return float(min(grid) / step)
    if best["factor"] == max(grid):
        return float(max(grid) * step)
    return None


def log_steps(table: pd.DataFrame, best: pd.DataFrame, batch: int, recipe: str = "linear + warm-up"
              ) -> tuple[np.ndarray, np.ndarray]:
    """log(steps to target) per seed at ``batch`` for the fastest factor, and the censoring mask."""
    factor = float(best.set_index("batch").loc[batch, "factor"])
    t = table[(table.batch == batch) & (table.recipe == recipe) & np.isclose(table.factor, factor)]
    return np.log(t.steps.to_numpy(dtype=float)), ~t.reached.to_numpy(dtype=bool)


def efficiency(steps_small: float, steps_large: float, small: int, large: int) -> float:
    """log(S(small)/S(large)) / log(large/small): 1 when the steps fall in proportion to the batch
    (perfect scaling), 0 when they do not fall (Shallue et al. 2019)."""
    return float(np.log(steps_small / steps_large) / np.log(large / small))


def largest_stable(lrs: Sequence[float], final_losses: Sequence[float], initial_loss: float,
                   fraction: float = 0.9) -> float:
    """The largest rate of an increasing ladder below which every rate trained: its loss after the
    scan is finite and below ``fraction`` × the loss at initialization. NaN if the smallest fails."""
    order = np.argsort(lrs)
    lrs, losses = np.asarray(lrs, float)[order], np.asarray(final_losses, float)[order]
    ok = np.isfinite(losses) & (losses < fraction * initial_loss)
    if not ok[0]:
        return float("nan")
    first_bad = int(np.argmin(ok)) if not ok.all() else len(ok)
    return float(lrs[first_bad - 1])


def scaling_sweep(build: Callable[[], torch.nn.Module], train: Split, evals: Mapping[str, Split], *,
                  batches: Sequence[int], base_lr: float, epochs: int, seeds: Sequence[int],
                  claim_seeds: Sequence[int], claim_batches: Sequence[int], target: float,
                  factors: Sequence[float] = (0.5, 1.0, 2.0), min_tuning_steps: int = 0,
                  metric: str = "val_acc", max_rounds: int = 2, n_evals: int = 12,
                  warmup_fraction: float = GOYAL_WARMUP, train_eval: int | None = 1000) -> pd.DataFrame:
    """Goyal et al.'s three recipes and Shallue et al.'s per-batch tuning, sharing runs where they can.

    At each batch (the first is the small-batch baseline, ``base_lr`` its rate) the recipes
    of :func:`recipe_arms` train for ``epochs`` epochs (``tuning=False`` rows, the fixed
    epoch budget Goyal et al. compare at); the linear + warm-up recipe at factor 1 and the
    two recipes without warm-up get ``claim_seeds`` at ``claim_batches`` and at the baseline.
    The tuning grid (``factors`` × the linearly scaled rate, with warm-up; ``tuning=True``
    rows) trains for ``max(epoch budget, min_tuning_steps)`` steps, so that a large batch
    has the steps to reach ``target`` (Shallue et al. train every batch size to the target);
    where the two budgets agree the grid's factor-1 runs are the recipe's runs. While the
    factor reaching ``target`` (``metric``) in the fewest steps sits on an edge of the grid,
    one factor beyond that edge is added (``seeds``), for at most ``max_rounds`` rounds.
    Returns the evaluation rows of every run (columns of :func:`train_arms`, ``tuning``).
    """
    base = batches[0]
    if list(batches) != sorted(set(batches)):
        raise ValueError(f"batches must be increasing and distinct, got {list(batches)}")
    if not isinstance(max_rounds, int) or max_rounds < 0:
        raise ValueError(f"max_rounds must be an int >= 0, got {max_rounds!r}")
    n_train, frames = len(train[0]), []
    for batch in batches:
        steps = run_steps(n_train, batch, epochs)
        grid_steps = max(steps, int(min_tuning_steps))
        main = {1.0: claim_seeds} if batch in claim_batches or batch == base else {}

        def arms(fs: Sequence[float], n_steps: int, seed_map: Mapping[float, Sequence[int]]) -> list[dict[str, Any]]:
            return recipe_arms(batch, base, base_lr, factors=fs, seeds=seeds, factor_seeds=seed_map,
                               steps=n_steps, warmup_fraction=warmup_fraction)

        def run(a: list[dict[str, Any]], n_steps: int) -> pd.DataFrame:
            return train_arms(build, train, a, batch=batch, steps=n_steps, evals=evals, n_evals=n_evals,
                              train_eval=train_eval)

        if grid_steps == steps:   # one set of runs: the grid includes the recipe at factor 1
            h = run([{**a, "tuning": a["recipe"] == "linear + warm-up"} for a in arms(factors, steps, main)], steps)
        else:                     # the recipes at the epoch budget, the grid with more steps
            recipes = [{**a, "tuning": False} for a in arms([1.0], steps, main)]
            grid = [{**a, "tuning": True} for a in arms(factors, grid_steps, {}) if a["recipe"] == "linear + warm-up"]
            first = run(recipes, steps)
            second = run(grid, grid_steps)
            h = pd.concat([first, second.assign(member=second.member + first.member.max() + 1)], ignore_index=True)
        for _ in range(max_rounds):
            best = fastest_factor(steps_to_target(h[h.tuning], target, metric)).iloc[0]
            extra = next_factor(best)
            if extra is None:
                break
            arm = {**arms([extra], grid_steps, {})[0], "tuning": True}
            more = run([arm], grid_steps)
            h = pd.concat([h, more.assign(member=more.member + h.member.max() + 1)], ignore_index=True)
        frames.append(h)
    return pd.concat(frames, ignore_index=True)


def recipe_finals(history: pd.DataFrame, n_train: int, epochs: int) -> pd.DataFrame:
    """The last evaluation of every recipe run at the epoch budget (the linear + warm-up recipe at
    factor 1, "linear", "no scaling"): Goyal et al.'s comparison, one row per (batch, recipe, seed)."""
    f = final_rows(history)
    budget = np.array([run_steps(n_train, int(b), epochs) for b in f.batch])
    keep = (f.steps_total.to_numpy() == budget) & ((f.recipe != "linear + warm-up").to_numpy()
                                                    | np.isclose(f.factor, 1.0))
    return f[keep].reset_index(drop=True)


def late_change(history: pd.DataFrame, metric: str = "train_loss", fraction: float = 0.1) -> pd.Series:
    """Per run (batch, member): the relative change of ``metric`` over the last ``fraction`` of the
    run, (last − earlier) / earlier, between the final evaluation and the latest one at or before
    ``1 − fraction`` of the steps: near 0 when training has levelled off."""
    out = {}
    for key, run in history.groupby(["batch", "member"]):
        run = run.sort_values("step")
        end = run.iloc[-1]
        before = run[run.step <= (1 - fraction) * end.step]
        out[key] = float((end[metric] - before[metric].iloc[-1]) / before[metric].iloc[-1]) if len(before) \
            else float("nan")
    return pd.Series(out, name=f"relative change of {metric}")
