"""Time-to-target races between optimizers: tuned per optimizer, repeated over seeds, costed.

A race trains full-batch from a seeded start until the loss reaches a target, the
time-to-result protocol of AlgoPerf (Dahl et al. 2023) at toy scale. Three numbers per run:

* **steps** to the target (deterministic for a seed; a run that never gets there is a
  lower bound, ``max_steps + 1``, and says so in ``reached``);
* **floating-point operations per step**, counted by ``torch.utils.flop_counter`` on the
  forward, backward and optimizer step (matrix products, including Hessian-vector
  products and Newton–Schulz iterations; eigen- and QR decompositions are not counted):
  machine-independent, so work = steps × FLOPs per step can decide a claim;
* **CPU time per step** (``time.process_time``, the median step, so one-time warm-ups do
  not count): machine-dependent, shown but never the basis of a verdict.

Learning rates are tuned per optimizer on one seed, on the half-decade lattice 10^(k/2)
(every optimizer the same resolution, the grid starting at the lattice point nearest a
conventional centre) that is extended until its best rate is strictly inside it; the
tuned rate then races on other seeds, so no verdict rests on the tuning seed.

AdaHessian's authors average the Hutchinson estimate |z ⊙ Hz| over blocks of a weight
tensor ("spatial averaging", Yao et al. 2021): over a convolution kernel's spatial
positions, and, in their released generic optimizer, over each row of a weight matrix.
``pytorch_optimizer`` keeps the per-entry estimate (as the authors' image-classification
code does for linear layers); ``spatial_average="rows"`` in a race spec computes the
row-averaged estimate here and hands it to the optimizer's ``step(hessian=...)``.
"""
from __future__ import annotations

import math
import statistics
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..optim import make_optimizer, needs_create_graph

LossFn = Callable[[nn.Module], torch.Tensor]
Problem = Callable[[int], tuple[nn.Module, LossFn]]  # seed -> (fresh model, its loss)

#: Centres of the tuning grids: the rate each source recommends (or the library's default).
LR_CENTRES = {
    "sgd": 0.1, "momentum": 0.03, "adam": 1e-3,
    "adahessian": 0.15,   # Yao et al. 2021, the authors' image-classification default
    "shampoo": 0.1,       # the rate of Gupta et al.'s 2018 experiments with momentum
    "soap": 3e-3,         # Vyas et al. 2024, the released default
    "muon": 0.02,         # Jordan et al. 2024, the released default
}


@dataclass
class Race:
    """How one run went: updates applied, whether the target was met, the loss after each update."""

    steps: int
    reached: bool
    cpu_seconds_per_step: float
    losses: list[float]


AVERAGES = ("rows",)


def row_averaged_hutchinson(params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``|H z|`` for a Rademacher ``z`` (= ``|z ⊙ Hz|``), averaged over each row of every matrix.

    The authors' released AdaHessian ("spatial average" of size -1 for 2-D tensors:
    the entire row); vectors keep one estimate per entry. ``grads`` must carry a graph.
    """
    z = [torch.randint_like(p, 2) * 2 - 1 for p in params]
    hz = torch.autograd.grad(grads, params, grad_outputs=z, retain_graph=False)
    out = []
    for h in hz:
        h = h.detach().abs()
        out.append(h.mean(dim=1, keepdim=True).expand_as(h).contiguous() if h.ndim == 2 else h)
    return out


def _updater(model: nn.Module, spec: dict) -> tuple[torch.optim.Optimizer, Callable[[torch.Tensor], None]]:
    """The optimizer of ``spec`` and a function doing one update from a loss."""
    spec = dict(spec)
    average = spec.pop("spatial_average", None)
    if average is not None and (average not in AVERAGES or spec.get("name") != "adahessian"):
        raise ValueError(f"spatial_average must be one of {AVERAGES} and only applies to adahessian, "
                         f"got {average!r} for {spec.get('name')!r}")
    opt = make_optimizer(model, spec)
    create_graph = needs_create_graph(spec.get("name"))
    params = [p for g in opt.param_groups for p in g["params"]]

    def update(loss: torch.Tensor) -> None:
        if average is None:
            with warnings.catch_warnings():  # torch warns that .grad then holds a graph: we drop it after the run
                warnings.filterwarnings("ignore", message=".*create_graph=True.*")
                loss.backward(create_graph=create_graph)
            opt.step()
            return
        grads = torch.autograd.grad(loss, params, create_graph=True)
        hessian = row_averaged_hutchinson(params, grads)
        for p, g in zip(params, grads):
            p.grad = g.detach()
        opt.step(hessian=hessian)
    return opt, update


def race_to_target(model: nn.Module, loss_fn: LossFn, spec: dict, target: float, max_steps: int, *,
                   relative: bool = False) -> Race:
    """Run the optimizer ``spec`` full-batch until ``loss_fn(model) <= target`` or ``max_steps`` updates.

    ``losses[k]`` is the loss after ``k`` updates; ``steps`` is the number of updates
    applied. ``relative``: the target is a fraction of the initial loss. AdaHessian gets
    the ``create_graph=True`` backward it needs. A non-finite loss stops the run as not
    reached.
    """
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    opt, update = _updater(model, spec)
    losses, times = [], []
    for step in range(max_steps + 1):
        t0 = time.process_time()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model)
        value = float(loss.detach())
        losses.append(value)
        if step == 0 and relative:
            target = target * value
        if value <= target or not math.isfinite(value) or step == max_steps:
            break
        update(loss)
        times.append(time.process_time() - t0)
    for p in model.parameters():
        p.grad = None  # drop AdaHessian's graph
    reached = math.isfinite(losses[-1]) and losses[-1] <= target
    return Race(len(losses) - 1, reached, statistics.median(times) if times else 0.0, losses)


def steps_to(losses: Sequence[float], target: float) -> float:
    """The first number of updates after which the loss was ``<= target`` (NaN if never)."""
    hit = np.flatnonzero(np.asarray(losses, dtype=float) <= target)
    return float(hit[0]) if len(hit) else float("nan")


def flops_per_step(model: nn.Module, loss_fn: LossFn, spec: dict, steps: int = 3) -> float:
    """Floating-point operations of one update (forward, backward, optimizer step), averaged.

    Counted by ``torch.utils.flop_counter.FlopCounterMode`` over ``steps`` updates after
    one uncounted warm-up update (optimizer state creation). ``model`` is trained.
    """
    from torch.utils.flop_counter import FlopCounterMode

    opt, step = _updater(model, spec)

    def update() -> None:
        opt.zero_grad(set_to_none=True)
        step(loss_fn(model))
    update()
    with FlopCounterMode(display=False) as counter:
        for _ in range(steps):
            update()
    for p in model.parameters():
        p.grad = None
    return counter.get_total_flops() / steps


def half_decade(k: int) -> float:
    """``10^(k/2)``, rounded to 3 significant digits: the k-th point of the half-decade lattice."""
    return float(f"{10 ** (k / 2):.3g}")


def nearest_k(lr: float) -> int:
    """The lattice index of the point of :func:`half_decade` nearest ``lr`` (on a log scale)."""
    if not lr > 0:
        raise ValueError(f"a learning rate must be positive, got {lr!r}")
    return round(2 * math.log10(lr))


@dataclass
class Tuning:
    """The tuned rate of one optimizer, every rate tried, and whether the best was interior."""

    lr: float
    rows: list[dict[str, Any]]
    interior: bool


def tune_lr(problem: Problem, spec: dict, centre: float, target: float, max_steps: int, *, seed: int,
            start: int = 1, max_points: int = 9, relative: bool = False) -> Tuning:
    """The rate of the half-decade lattice near ``centre`` that reaches ``target`` in fewest steps.

    Starts with the ``2·start + 1`` lattice rates around the one nearest ``centre``, tried
    from the largest down; once a rate has reached the target, the next are capped at its
    step count (they can only win by being faster), which keeps grids cheap. Runs that do
    not reach the target rank by their final loss, diverged runs last (the smaller of two
    diverged rates ranking higher, so the grid grows towards stable rates); ties go to the
    larger rate. While the
    best rate is at an end of the grid, the grid grows by one rate on that side, up to
    ``max_points`` rates; ``interior`` says whether the best ended strictly inside.
    """
    if start < 1 or max_points < 2 * start + 1:
        raise ValueError(f"need start >= 1 and max_points >= 2*start+1, got start={start}, max_points={max_points}")
    k0 = nearest_k(centre)
    rows: list[dict[str, Any]] = []
    scores: dict[int, tuple[float, float, float]] = {}
    cap, best = max_steps, None

    def run(k: int) -> None:
        nonlocal cap, best
        model, loss_fn = problem(seed)
        lr = half_decade(k)
        race = race_to_target(model, loss_fn, {**spec, "lr": lr}, target, cap, relative=relative)
        diverged = not math.isfinite(race.losses[-1])
        if race.reached:  # fewest steps; ties to the larger rate
            score = (float(race.steps), race.losses[-1], -lr)
        elif diverged:    # worse than any finite run; of two diverged rates, the smaller is nearer
            score = (max_steps + 1.0, math.inf, lr)
        else:             # capped below the budget: lost to the best; uncapped: rank by final loss
            score = (max_steps + 1.0, race.losses[-1] if cap == max_steps else math.inf, -lr)
        scores[k] = score
        rows.append({"lr": lr, "k": k, "reached": race.reached, "steps": race.steps if race.reached else np.nan,
                     "final_loss": race.losses[-1], "capped_at": cap})
        if best is None or score < scores[best]:
            best = k
        if race.reached:
            cap = min(cap, race.steps)

    for k in range(k0 + start, k0 - start - 1, -1):
        run(k)
    while len(scores) < max_points and best in (max(scores), min(scores)):
        run(max(scores) + 1 if best == max(scores) else min(scores) - 1)
    return Tuning(half_decade(best), rows, min(scores) < best < max(scores))


def tuned_races(problem: Problem, optimizers: Mapping[str, dict | Callable[[dict[str, float]], dict]],
                target: float, max_steps: int, *, tune_seed: int, seeds: Sequence[int],
                early_targets: Sequence[float] = (), start: int = 1, max_points: int = 9,
                relative: bool = False, centres: Mapping[str, float] | None = None,
                count_flops: bool = True) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Tune each arm's rate on ``tune_seed`` (:func:`tune_lr`), then race it on every seed.

    ``optimizers`` maps an arm to its fixed arguments (``name`` defaults to the arm), or
    to a function of the rates tuned so far (in order) returning them (Muon's AdamW part
    at Adam's tuned rate). The grid centre is :data:`LR_CENTRES` of the arm, else of its
    optimizer. Returns the tuning rows, one row per (arm, seed) run (``steps`` NaN when not
    reached, ``steps_bound`` = steps or the lower bound ``max_steps + 1``, ``steps_to_<t>``
    for the early targets, CPU ms per step) and one row per arm (rate, interior, FLOPs per
    step measured on the tuning seed's problem).
    """
    if len(seeds) < 1:
        raise ValueError("seeds must list at least one seed")
    centres = {**LR_CENTRES, **(centres or {})}
    tuned: dict[str, float] = {}
    tuning, runs, per_arm = [], [], []
    for arm, extra in optimizers.items():
        spec = {"name": arm, **(extra(tuned) if callable(extra) else extra)}
        centre = centres.get(arm, centres.get(spec["name"]))
        if centre is None:
            raise ValueError(f"no grid centre for {arm!r}; known: {', '.join(centres)}")
        t = tune_lr(problem, spec, centre, target, max_steps, seed=tune_seed, start=start,
                    max_points=max_points, relative=relative)
        tuned[arm] = t.lr
        tuning += [{"optimizer": arm, **row} for row in t.rows]
        spec = {**spec, "lr": t.lr}
        for seed in seeds:
            model, loss_fn = problem(seed)
            race = race_to_target(model, loss_fn, spec, target, max_steps, relative=relative)
            row = {"optimizer": arm, "seed": seed, "lr": t.lr, "reached": race.reached,
                   "steps": race.steps if race.reached else np.nan,
                   "steps_bound": race.steps if race.reached else max_steps + 1,
                   "final_loss": race.losses[-1], "cpu_ms_per_step": 1e3 * race.cpu_seconds_per_step}
            row.update({f"steps_to_{e:g}": steps_to(race.losses, e) for e in early_targets})
            runs.append(row)
        flops = flops_per_step(*problem(tune_seed), spec) if count_flops else np.nan
        per_arm.append({"optimizer": arm, "lr": t.lr, "interior": t.interior, "grid_points": len(t.rows),
                        "flops_per_step": flops})
    return pd.DataFrame(tuning), pd.DataFrame(runs), pd.DataFrame(per_arm)


def with_work(runs: pd.DataFrame, arms: pd.DataFrame, baseline: str = "momentum") -> pd.DataFrame:
    """``runs`` with ``work`` = steps (or their bound) × FLOPs per step, in ``baseline`` steps."""
    flops = arms.set_index("optimizer")["flops_per_step"]
    if baseline not in flops.index:
        raise ValueError(f"baseline {baseline!r} not raced; raced: {', '.join(flops.index)}")
    return runs.assign(work=runs["steps_bound"] * runs["optimizer"].map(flops) / flops[baseline])


def bounds(runs: pd.DataFrame, column: str = "steps_bound", **where: Any) -> tuple[np.ndarray, np.ndarray]:
    """One arm's ``column`` per seed (in seed order) and which of them are lower bounds (not reached)."""
    mask = np.ones(len(runs), dtype=bool)
    for key, value in where.items():
        mask &= (runs[key] == value).to_numpy()
    rows = runs[mask].sort_values("seed")
    if rows.empty:
        raise ValueError(f"no runs with {where}")
    return rows[column].to_numpy(dtype=float), ~rows["reached"].to_numpy(dtype=bool)


def steps_text(steps: np.ndarray, reached: np.ndarray) -> str:
    """Mean ± sd of the steps over seeds; ``≥ mean`` when some runs are bounds; "not reached" if all are."""
    if not reached.any():
        return "not reached"
    if reached.all():
        return f"{steps.mean():.0f} ± {steps.std(ddof=1):.0f}" if len(steps) > 1 else f"{steps.mean():.0f}"
    return f"≥ {steps.mean():.0f} ({int(reached.sum())}/{len(steps)} reached)"


def race_summary(runs: pd.DataFrame, arms: pd.DataFrame, baseline: str = "momentum") -> pd.DataFrame:
    """One row per arm: tuned rate, steps over seeds (:func:`steps_text`), FLOPs and CPU time per
    step relative to ``baseline``, and the mean work (steps × FLOPs, in ``baseline`` steps)."""
    per = arms.set_index("optimizer")
    runs = with_work(runs, arms, baseline)
    cpu = runs.groupby("optimizer", sort=False)["cpu_ms_per_step"].median()
    rows = []
    for name, group in runs.groupby("optimizer", sort=False):
        steps, reached = group["steps_bound"].to_numpy(dtype=float), group["reached"].to_numpy(dtype=bool)
        rows.append({"optimizer": name, "tuned lr": per.loc[name, "lr"], "steps to target": steps_text(steps, reached),
                     f"FLOPs per step ÷ {baseline}": per.loc[name, "flops_per_step"] / per.loc[baseline, "flops_per_step"],
                     f"CPU time per step ÷ {baseline}": cpu[name] / cpu[baseline],
                     f"work ({baseline} steps)": ("≥ " if not reached.all() else "") + f"{group['work'].mean():.0f}"})
    return pd.DataFrame(rows)


def matmul_time_ratio(n: int = 100, dtype: torch.dtype = torch.bfloat16, reference: torch.dtype = torch.float32,
                      repeats: int = 20) -> float:
    """CPU time of an ``n × n`` matrix product in ``dtype`` over the same product in ``reference``.

    Muon's Newton–Schulz iterations run in bfloat16 (Jordan et al. 2024), fast on GPUs; on
    a CPU without bfloat16 units the same products can be many times slower, which is
    what its CPU time per step then measures. Machine-dependent, like every timing.
    """
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g)

    def cost(dt: torch.dtype) -> float:
        x = a.to(dt)
        x @ x  # warm-up
        t0 = time.process_time()
        for _ in range(repeats):
            x @ x
        return time.process_time() - t0
    return cost(dtype) / max(cost(reference), 1e-9)

