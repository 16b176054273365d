"""Tuning budgets per optimizer, and statistics of hyperparameter grids.

Comparisons of optimizers are only as fair as their tuning (Choi et al. 2019; Nado et al.
2021). Two protocols live here:

* :func:`tune_learning_rates`: the learning rate alone, on the same ladder for every
  optimizer (rates a fixed fraction of a decade apart), extended past an edge until each
  optimum is interior, so that no optimizer is judged at the border of its search space
  and all get the same resolution (chapter 3);
* :func:`trial_grid` / :func:`tune`: a fixed number of trials per optimizer over a grid
  spanning the same number of decades around a conventional centre, with momentum
  optimizers splitting the budget between learning rates and two momenta.

The centres are conventions, and they are part of the result: a different search space
can change a ranking. :func:`good_region_slope` and :func:`tuning_spread` summarize grids.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..optim import OPTIMIZERS, check_optimizer


def lr_grid(centre: float, n: int, decades: float = 2.0) -> list[float]:
    """``n`` learning rates log-spaced over ``decades`` decades centred (geometrically) on ``centre``."""
    if centre <= 0 or n < 1 or decades < 0:
        raise ValueError(f"need centre > 0, n >= 1, decades >= 0; got {centre}, {n}, {decades}")
    if n == 1:
        return [float(centre)]
    return [float(centre * 10 ** e) for e in np.linspace(-decades / 2, decades / 2, n)]


def trial_grid(name: str, budget: int, decades: float = 2.0) -> list[dict[str, Any]]:
    """``budget`` optimizer specs for ``name``: lr grid, × momenta where it has the knob."""
    info = check_optimizer(name)
    if info.lr_centre is None:
        tunable = [n for n, i in OPTIMIZERS.items() if i.lr_centre is not None]
        raise ValueError(f"no search space for {name!r}; valid: {', '.join(tunable)}")
    if not isinstance(budget, int) or budget < 1:
        raise ValueError(f"budget must be a positive int, got {budget!r}")
    momenta = info.momenta
    if momenta and budget >= 2 * len(momenta) and budget % len(momenta) == 0:
        lrs = lr_grid(info.lr_centre, budget // len(momenta), decades)
        return [{"name": name, "lr": lr, "momentum": m} for m in momenta for lr in lrs]
    return [{"name": name, "lr": lr} for lr in lr_grid(info.lr_centre, budget, decades)]


def tune(run: Callable[[dict[str, Any]], pd.DataFrame], names: list[str], budget: int,
         metric: str = "val_acc", decades: float = 2.0) -> pd.DataFrame:
    """Run every trial of every optimizer; one row per trial with its final ``metric``.

    ``run(spec)`` trains once and returns the per-epoch history. A diverged run (NaN)
    scores as the worst trial.
    """
    rows = []
    for name in names:
        for i, spec in enumerate(trial_grid(name, budget, decades)):
            history = run(spec)
            score = float(history[metric].iloc[-1]) if len(history) else float("nan")
            rows.append({"optimizer": name, "trial": i, "lr": spec["lr"],
                         "momentum": spec.get("momentum", np.nan), metric: score, "spec": spec})
    return pd.DataFrame(rows)


def best_specs(trials: pd.DataFrame, metric: str = "val_acc") -> dict[str, dict[str, Any]]:
    """The best trial's spec per optimizer (highest ``metric``; NaN never wins; ties: first)."""
    out = {}
    for name, group in trials.groupby("optimizer", sort=False):
        scores = group[metric].fillna(-np.inf).to_numpy()
        out[name] = dict(group["spec"].iloc[int(np.argmax(scores))])
    return out


def steps_to_target(history: pd.DataFrame, target: float, metric: str = "val_acc") -> float:
    """The first measured ``step`` at which ``metric`` reaches ``target`` (NaN: never): per epoch
    for a :func:`accel.training.fit` history, or per probe for an accuracy curve."""
    hit = history[history[metric] >= target]
    return float(hit["step"].min()) if len(hit) else float("nan")


def good_region_slope(grid: pd.DataFrame, x: str, y: str, value: str, tol: float = 0.01,
                      row_tol: float = 0.05) -> float:
    """How the good ``y`` moves with ``x``: slope of log10(best y) against log10(x).

    For each ``x`` (a row of the heatmap), "best y" is the geometric mean of the ``y``
    values whose ``value`` is within ``tol`` of that row's maximum (a smoothed argmax).
    Only rows whose maximum is within ``row_tol`` of the grid's best are used (rows where
    training fails say nothing about the best ``y``). A slope near 0 means the good
    region is axis-aligned (the two hyperparameters decouple); near −1, a diagonal
    valley (only their product matters). NaN with fewer than two usable rows.
    """
    table = grid.groupby([x, y])[value].mean().reset_index()
    best = table[value].max()
    xs, ys = [], []
    for xv, row in table.groupby(x):
        top = row[value].max()
        if top < best - row_tol:
            continue
        good = row[row[value] >= top - tol]
        xs.append(np.log10(xv))
        ys.append(np.mean(np.log10(good[y].to_numpy(dtype=float))))
    if len(xs) < 2:
        return float("nan")
    return float(np.polyfit(xs, ys, 1)[0])


def holdout(name: str, batch_size: int = 128, *, fraction: float = 0.2, train_size: int | None = None,
            seed: int = 0, source_args: dict[str, Any] | None = None, **kwargs: Any):
    """Two data modules over the same training samples: one validated on a held-out part of the
    training split (for tuning), one on the test split (for the final report), so that the
    configuration chosen is never chosen on the test set."""
    from ..data.datamodule import DATASETS, TensorDataModule

    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; valid: {', '.join(DATASETS)}")
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    x, y, xt, yt = DATASETS[name](**(source_args or {}))
    n_val = int(round(len(x) * fraction))
    xv, yv, x, y = x[:n_val], y[:n_val], x[n_val:], y[n_val:]
    if train_size is not None:
        if not 1 <= train_size <= len(x):
            raise ValueError(f"train_size must be between 1 and {len(x)}, got {train_size}")
        x, y = x[:train_size], y[:train_size]
    tune_dm = TensorDataModule(x, y, xv, yv, batch_size=batch_size, seed=seed, **kwargs)
    test_dm = TensorDataModule(x, y, xt, yt, batch_size=batch_size, seed=seed, **kwargs)
    return tune_dm, test_dm


def tuned_comparison(build: Callable[[], Any], tune_dm: Any, test_dm: Any, names: list[str], budget: int,
                     epochs: int, seeds: list[int], *, tune_seed: int, target: float,
                     seed_offset: int = 1000) -> tuple[pd.DataFrame, pd.DataFrame]:
    """An equal tuning budget per optimizer, then the winners retrained on fresh seeds.

    Every trial (:func:`tune`) trains ``build()`` once with seed ``tune_seed`` on ``tune_dm``
    (validated on held-out training data, see :func:`holdout`); each optimizer's best spec is
    then trained with seeds ``s + seed_offset`` (never used in tuning) on ``test_dm``.
    Returns the trials and one row per (optimizer, seed): ``optimizer, seed`` (the base seed
    ``s``), ``lr, momentum, test accuracy, steps to target``.
    """
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds}")
    from ..module import Classifier
    from ..training import train_seeds

    def run(spec: dict[str, Any], dm: Any, run_seeds: list[int]) -> pd.DataFrame:
        return train_seeds(lambda: Classifier(build(), spec), dm, epochs, run_seeds)

    trials = tune(lambda spec: run(spec, tune_dm, [tune_seed]), names, budget)
    finals = []
    for name, spec in best_specs(trials).items():
        runs = run(spec, test_dm, [s + seed_offset for s in seeds])
        for s, (_, history) in zip(seeds, runs.groupby("seed", sort=False)):
            finals.append({"optimizer": name, "seed": s, "lr": spec["lr"], "momentum": spec.get("momentum", np.nan),
                           "test accuracy": history.val_acc.iloc[-1],
                           "steps to target": steps_to_target(history, target)})
    return trials, pd.DataFrame(finals)


# ---------------------------------------------------------------- learning-rate grids with interior optima

def ladder(centre: float, n: int, step: float = 0.5) -> list[float]:
    """``n`` learning rates ``step`` decades apart, centred (geometrically) on ``centre``."""
    if not isinstance(n, int) or n < 1 or step <= 0:
        raise ValueError(f"need an int n >= 1 and step > 0; got {n!r}, {step!r}")
    return lr_grid(centre, n, step * (n - 1))


def edge_extension(lrs: Sequence[float], scores: Sequence[float], step: float = 0.5) -> float | None:
    """The learning rate one ``step`` (decades) beyond the grid's edge when the best score sits on
    that edge, else None (the optimum is interior). A non-finite score (a diverged run) never wins;
    when every score is non-finite the grid is extended downwards."""
    lrs = np.asarray(lrs, dtype=float)
    order = np.argsort(lrs)
    lrs, s = lrs[order], np.asarray(scores, dtype=float)[order]
    s = np.where(np.isfinite(s), s, -np.inf)
    best = int(np.argmax(s))
    if np.isneginf(s).all() or best == 0:
        return float(lrs[0] * 10 ** -step)
    if best == len(lrs) - 1:
        return float(lrs[-1] * 10 ** step)
    return None


def tune_learning_rates(run: Callable[[list[dict[str, Any]]], Sequence[float]], names: Sequence[str], *,
                        n: int = 5, step: float = 0.5, centres: Mapping[str, float] | None = None,
                        options: Mapping[str, Mapping[str, Any]] | None = None,
                        max_rounds: int = 4) -> pd.DataFrame:
    """The same learning-rate ladder for every optimizer, extended until each optimum is interior.

    Round 0 trains ``n`` rates ``step`` decades apart around each optimizer's centre
    (``centres``, else its ``lr_centre`` in :mod:`accel.optim.info`); every later round adds,
    for each optimizer whose best rate is on an edge of its grid, one rate beyond that edge
    (:func:`edge_extension`), for at most ``max_rounds`` rounds. Only the learning rate is
    tuned; ``options[name]`` are fixed for that optimizer (a momentum, a weight decay).
    ``run(specs)`` trains every spec once and returns one score each (NaN: diverged).
    Rows: ``optimizer, lr, score, round, spec``.
    """
    if not isinstance(max_rounds, int) or max_rounds < 0:
        raise ValueError(f"max_rounds must be an int >= 0, got {max_rounds!r}")
    centres, options = dict(centres or {}), dict(options or {})
    pending = []
    for name in names:
        info = check_optimizer(name)
        centre = centres.get(name, info.lr_centre)
        if centre is None:
            raise ValueError(f"no learning-rate centre for {name!r}: pass centres={{{name!r}: ...}}")
        pending += [{"name": name, "lr": lr, **options.get(name, {})} for lr in ladder(centre, n, step)]
    rows: list[dict[str, Any]] = []
    for rnd in range(max_rounds + 1):
        scores = list(run(pending))
        if len(scores) != len(pending):
            raise ValueError(f"run() returned {len(scores)} scores for {len(pending)} specs")
        rows += [{"optimizer": s["name"], "lr": float(s["lr"]), "score": float(v), "round": rnd, "spec": s}
                 for s, v in zip(pending, scores)]
        table = pd.DataFrame(rows)
        pending = []
        for name in names:
            t = table[table.optimizer == name]
            lr = edge_extension(t.lr, t.score, step)
            if lr is not None:
                pending.append({"name": name, "lr": lr, **options.get(name, {})})
        if not pending or rnd == max_rounds:
            break
    return pd.DataFrame(rows).sort_values(["optimizer", "lr"], kind="stable", ignore_index=True)


def best_learning_rates(trials: pd.DataFrame, score: str = "score") -> pd.DataFrame:
    """Per optimizer (in order of appearance): the best trial's ``lr``, ``score`` and ``spec``,
    whether that optimum is ``interior`` to the grid, and the grid's size ``trials``
    (``spec`` only when the trials have one)."""
    rows = []
    for name, t in trials.groupby("optimizer", sort=False):
        t = t.sort_values("lr")
        s = t[score].to_numpy(dtype=float)
        best = int(np.argmax(np.where(np.isfinite(s), s, -np.inf)))
        row = {"optimizer": name, "lr": float(t.lr.iloc[best]), score: float(s[best]),
               "interior": bool(0 < best < len(t) - 1 and np.isfinite(s[best])), "trials": len(t)}
        if "spec" in t:
            row["spec"] = dict(t["spec"].iloc[best])
        rows.append(row)
    return pd.DataFrame(rows)


def tuning_spread(trials: pd.DataFrame, *, worst: float, score: str = "score",
                  window: float = 0.5) -> dict[str, float]:
    """Does the choice of optimizer matter less than its learning rate (Choi et al. 2019)?

    Both spreads are read from the same trials and the same metric: ``across``, the range
    over optimizers of their best ``score``; ``within``, the mean over optimizers of the
    score lost, on average, at the rates ``window`` decades from its best (its two
    neighbours on a half-decade ladder). A diverged trial scores ``worst`` (chance
    accuracy), not 0. ``ratio`` = across / within: below 1, a learning rate off by a
    factor 10^window costs more than the choice of optimizer.
    """
    best = best_learning_rates(trials, score)
    losses = []
    for _, row in best.iterrows():
        t = trials[trials.optimizer == row.optimizer]
        s = t[score].to_numpy(dtype=float)
        s = np.where(np.isfinite(s), s, worst)
        near = np.isclose(np.abs(np.log10(t.lr.to_numpy(dtype=float) / row.lr)), window, atol=1e-6)
        if not near.any():
            raise ValueError(f"{row.optimizer}: no trial {window} decades from its best rate {row.lr:g}")
        losses.append(row[score] - s[near].mean())
    across = float(best[score].max() - best[score].min())
    within = float(np.mean(losses))
    return {"across": across, "within": within, "ratio": across / within if within > 0 else float("inf")}
