"""Large-batch experiments: one recipe trained at many batch sizes, and steps to a target.

A *recipe* says how a learning rate tuned at ``base_batch`` is carried to another batch
size and how training starts:

    {"optimizer": {"name": "nesterov", "lr": 0.0125}, "base_batch": 32,
     "scaling": "linear", "warmup_epochs": 1.0, "schedule": "cosine"}

``scaling`` is ``"none"`` (keep the lr), ``"linear"`` (Goyal et al. 2017: lr ∝ batch) or
``"sqrt"`` (lr ∝ √batch, the rule argued for adaptive methods). A warm-up ramps the lr
linearly over ``warmup_epochs``; Goyal et al. start it at the small-batch lr
(``warmup_start="goyal"``: a factor base_batch/batch), otherwise it starts at
``warmup_start`` times the target lr. After warm-up the ``schedule`` runs over the
remaining steps. Every run has the same epoch budget, so a larger batch takes fewer steps.

Steps to a target accuracy (Shallue et al. 2019) need finer than per-epoch
measurements; :class:`accel.callbacks.AccuracyProbe` evaluates the test accuracy on a
geometric grid of steps (:func:`probe_steps`).
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import pytorch_lightning as pl
from pytorch_lightning.callbacks import EarlyStopping

from ..module import Classifier
from ..schedules import epochs_to_steps, linear_scaling
from ..seeding import seed_everything
from ..callbacks.accuracy_probe import AccuracyProbe
from ..training import fit
from .tuning import steps_to_target

SCALINGS = ("none", "linear", "sqrt")


def scaled_lr(base_lr: float, batch: int, base_batch: int, scaling: str) -> float:
    """The learning rate at ``batch`` for a rate ``base_lr`` tuned at ``base_batch``."""
    if scaling not in SCALINGS:
        raise ValueError(f"unknown scaling {scaling!r}; valid: {', '.join(SCALINGS)}")
    if scaling == "linear":
        return linear_scaling(base_lr, batch, base_batch)
    if scaling == "sqrt":
        return base_lr * math.sqrt(batch / base_batch)
    return base_lr


def steps_per_epoch(n: int, batch: int, drop_last: bool = True) -> int:
    return n // batch if drop_last else math.ceil(n / batch)


def probe_steps(total_steps: int, per_octave: int = 3, first: int = 4) -> list[int]:
    """Steps at which to measure: ``per_octave`` per doubling from ``first``, and the last step."""
    if total_steps < 1 or per_octave < 1 or first < 1:
        raise ValueError("total_steps, per_octave and first must be positive")
    n = int(math.floor(per_octave * math.log2(max(total_steps, first) / first))) + 1
    grid = {int(round(first * 2 ** (i / per_octave))) for i in range(n)}
    return sorted(s for s in grid | {total_steps} if s <= total_steps)


def check_recipe(recipe: dict[str, Any]) -> dict[str, Any]:
    valid = {"optimizer", "base_batch", "scaling", "warmup_epochs", "warmup_start", "schedule"}
    unknown = set(recipe) - valid
    if unknown or "optimizer" not in recipe:
        raise ValueError(f"a recipe needs 'optimizer' and takes only {sorted(valid)}; got {sorted(recipe)}")
    out = {"base_batch": 32, "scaling": "none", "warmup_epochs": 0.0, "warmup_start": 1e-3,
           "schedule": "cosine", **recipe}
    scaled_lr(1.0, 1, 1, out["scaling"])  # validates the name
    return out


def run_specs(recipe: dict[str, Any], batch: int, n_train: int, epochs: int) -> tuple[dict, dict, int]:
    """The optimizer spec, schedule spec and total steps a recipe gives at ``batch``."""
    r = check_recipe(recipe)
    opt = dict(r["optimizer"])
    opt["lr"] = scaled_lr(opt["lr"], batch, r["base_batch"], r["scaling"])
    per_epoch = steps_per_epoch(n_train, batch)
    if per_epoch < 1:
        raise ValueError(f"batch {batch} exceeds the {n_train} training samples")
    total = per_epoch * epochs
    schedule: dict[str, Any] = {"name": r["schedule"]}
    warmup = min(epochs_to_steps(r["warmup_epochs"], per_epoch), total - 1)
    if warmup > 0:
        start = r["warmup_start"]
        start = min(1.0, r["base_batch"] / batch) if start == "goyal" else float(start)
        schedule.update(warmup_steps=warmup, warmup_start_factor=start)
    return opt, schedule, total


def train_at_batch(model: dict[str, Any], recipe: dict[str, Any], batch: int, datamodule: Any,
                   epochs: int, seed: int, *, probe: bool = False,
                   callbacks: Sequence[pl.Callback] = ()) -> tuple[dict[str, Any], pd.DataFrame]:
    """Train ``model`` with ``recipe`` at ``batch`` for ``epochs``; return the final metrics
    (``val_acc``, ``train_loss``, ``diverged``, ``steps``, ``lr``) and the probe curve.

    A run whose training loss becomes non-finite is stopped at the end of that epoch
    (Lightning's ``EarlyStopping(check_finite=True)``) and counted as diverged.
    """
    n_train = len(datamodule.x_train)
    opt, schedule, total = run_specs(recipe, batch, n_train, epochs)
    datamodule.drop_last, datamodule.seed = True, seed
    datamodule.set_batch_size(batch)  # validated against the training set
    seed_everything(seed)
    module = Classifier(model, opt, schedule, total_steps=total)
    stop = EarlyStopping(monitor="train_loss", check_finite=True, patience=10**9,
                         check_on_train_epoch_end=True)
    extra: list[pl.Callback] = [stop, *callbacks]
    prober = None
    if probe:
        prober = AccuracyProbe(datamodule.x_test, datamodule.y_test, probe_steps(total))
        extra.append(prober)
    history = fit(module, datamodule, epochs, callbacks=extra)
    last = history.iloc[-1]
    loss = float(last.get("train_loss", float("nan")))
    row = {"batch": batch, "seed": seed, "lr": opt["lr"], "steps": total,
           "epochs_run": int(last["epoch"]), "train_loss": loss,
           "val_acc": float(last.get("val_acc", float("nan"))),
           "diverged": not math.isfinite(loss) or int(last["epoch"]) < epochs}
    curve = prober.frame() if prober else pd.DataFrame(columns=["step", "acc"])
    return row, curve.assign(batch=batch, seed=seed)


def batch_sweep(model: dict[str, Any], recipes: dict[str, dict[str, Any]], batches: Sequence[int],
                datamodule: Any, epochs: int, seeds: Sequence[int], *, probe: bool = False,
                skip: Iterable[tuple[str, int]] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every recipe at every batch size and seed: a runs table (one row per run, with a
    ``recipe`` column) and the probe curves (empty unless ``probe``). ``skip`` lists
    ``(recipe, batch)`` pairs not to run."""
    skip = set(skip)
    rows, curves = [], []
    for name, recipe in recipes.items():
        for batch in batches:
            if (name, batch) in skip:
                continue
            for seed in seeds:
                row, curve = train_at_batch(model, recipe, batch, datamodule, epochs, seed, probe=probe)
                rows.append({"recipe": name, **row})
                curves.append(curve.assign(recipe=name))
    return pd.DataFrame(rows), pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()


def best_trials(runs: pd.DataFrame, by: str | list[str], metric: str = "val_acc") -> pd.DataFrame:
    """For each ``by`` group, the trial (a ``recipe``) with the best seed-mean ``metric``,
    and all its seeds' rows: the outcome of a grid search with that budget."""
    keys = [by] if isinstance(by, str) else list(by)
    means = runs.groupby(keys + ["recipe"], as_index=False)[metric].mean()
    means[metric] = means[metric].fillna(-np.inf)
    best = means.loc[means.groupby(keys)[metric].idxmax(), keys + ["recipe"]]
    return runs.merge(best, on=keys + ["recipe"])


def scaling_efficiency(steps: pd.Series) -> pd.DataFrame:
    """From steps-to-target indexed by batch size (ascending), the speed-up at each doubling
    relative to the previous batch and its fraction of perfect scaling (Shallue et al. 2019:
    perfect scaling halves the steps when the batch doubles)."""
    s = steps.sort_index().astype(float)
    b = s.index.to_numpy(dtype=float)
    speedup = s.shift(1) / s
    ideal = pd.Series(b, index=s.index) / pd.Series(b, index=s.index).shift(1)
    return pd.DataFrame({"steps": s, "speedup": speedup, "ideal": ideal,
                         "efficiency": np.log(speedup) / np.log(ideal)})


def steps_to_target_table(runs: pd.DataFrame, curves: pd.DataFrame, target: float) -> pd.DataFrame:
    """Per run (recipe, batch, seed): the steps to reach ``target`` test accuracy. A run that
    never reaches it gets its total step count and ``reached=False``: the true value is
    larger (a censored measurement), so speed-ups computed from it are upper bounds."""
    rows = []
    for (recipe, batch, seed), curve in curves.groupby(["recipe", "batch", "seed"]):
        run = runs[(runs.recipe == recipe) & (runs.batch == batch) & (runs.seed == seed)].iloc[0]
        steps = steps_to_target(curve, target, metric="acc")
        reached = math.isfinite(steps) and not run["diverged"]
        rows.append({"recipe": recipe, "batch": batch, "seed": seed, "reached": reached,
                     "steps": steps if reached else float(run["steps"])})
    return pd.DataFrame(rows, columns=["recipe", "batch", "seed", "reached", "steps"])


def fastest_per_batch(table: pd.DataFrame) -> pd.DataFrame:
    """For each batch size, the recipe with the fewest seed-mean steps to target (a recipe
    counts as reaching it only if every seed did; censored recipes are used only when no
    recipe reached it): Shallue et al.'s measurement, with the recipes as the tuning grid."""
    g = table.groupby(["batch", "recipe"]).agg(steps=("steps", "mean"), reached=("reached", "all")).reset_index()
    g = g.sort_values(["batch", "reached", "steps"], ascending=[True, False, True])
    return g.groupby("batch").head(1).set_index("batch")


def share_point(runs: pd.DataFrame, curves: pd.DataFrame, batch: int, source: str,
                targets: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Copy ``source``'s runs and probe curves at ``batch`` to every recipe in ``targets``.

    Recipes that differ only away from ``batch`` (at the baseline batch "no scaling",
    "linear" and "linear + warm-up" are the same run but for the warm-up) share one
    measured point there instead of training it again; the copies make that point part
    of every recipe's curve for plotting and for steps-to-target. Copies are appended
    after the measured rows, one target at a time.
    """
    point = runs[(runs.batch == batch) & (runs.recipe == source)]
    point_curves = curves[(curves.batch == batch) & (curves.recipe == source)]
    if point.empty:
        raise ValueError(f"no runs of {source!r} at batch {batch} to share")
    for name in targets:
        runs = pd.concat([runs, point.assign(recipe=name)], ignore_index=True)
        curves = pd.concat([curves, point_curves.assign(recipe=name)])
    return runs, curves


def doubling_efficiency(steps: pd.Series, small: int, large: int) -> float:
    """log(S(small)/S(large)) / log(large/small) for steps-to-target ``steps`` indexed by
    batch: 1 when the steps fall in proportion to the batch (perfect scaling), 0 when they
    do not fall (Shallue et al. 2019); the per-doubling efficiency of
    :func:`scaling_efficiency` over any pair of batch sizes."""
    return np.log(steps.loc[small] / steps.loc[large]) / np.log(large / small)


def ratio_spread(ratios: pd.DataFrame) -> pd.Series:
    """Per step, the largest layer's ‖w‖/‖∇w‖ over the smallest's (rows of
    :class:`accel.callbacks.TrustRatioMonitor`): the disparity between layers that
    motivates LARS (You et al. 2017, Table 1)."""
    return ratios.groupby("step")["ratio"].agg(lambda r: r.max() / r.min())
