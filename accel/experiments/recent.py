"""Protocols of the recent-methods chapter: schedules tuned per length, Schedule-Free, WSD, Muon, SOAP.

* **Arms.** An arm is an optimizer with a schedule over a run length (:func:`make_arm`):
  AdamW with a cosine decay (Loshchilov & Hutter 2017), with warmup-stable-decay and a
  linear or (1 − √) cooldown over the last ``cooldown_fraction`` of the run (Hägele et al.
  2024), at a constant rate, or Schedule-Free AdamW without a schedule (Defazio et al.
  2024). Every arm warms up linearly over the same ``warmup`` steps (Schedule-Free through
  its own ``warmup_steps``), so warm-up is not what is compared.
* **Fair tuning.** :func:`tune` tunes each arm's learning rate alone on one lattice, rates
  ``step`` decades apart, extended past an edge until the best rate is interior
  (:func:`accel.experiments.tuning.edge_extension`), scored on a held-out part of the
  training set with one tuning seed; the finals then use fresh seeds on the test set.
* **Branched cooldowns.** :func:`wsd_tree` is one constant-rate trunk and, for each run
  length L, a cooldown branched off it at L − C(L) (:mod:`accel.experiments.recent_stacked`):
  the results of separate WSD runs of every length for the cost of the longest one plus
  the shorter ones' cooldowns.
* **Single-run optimizers.** Muon's orthogonalized update is per matrix, SOAP's and
  Shampoo's preconditioners are per tensor, and Adam-mini shares one second moment per
  tensor, so their runs are single runs (:func:`accel.experiments.single_run.train_each`),
  with the same initial weights and data order per seed as the stacked arms;
  :func:`tuned_single_runs` is their whole protocol (tune, then train the fresh seeds) and
  :func:`seconds_per_step` measures the cost per step.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from .recent_stacked import Arm, Split, train_arms
from .single_run import train_each, train_one
from .tuning import best_learning_rates, edge_extension, ladder

KINDS = ("cosine", "wsd_linear", "wsd_sqrt", "constant", "schedule_free")


def cooldown_steps(length: int, fraction: float = 0.2) -> int:
    """C(L): the cooldown's updates in a WSD run of ``length`` (at least 1)."""
    if not 0 < fraction < 1:
        raise ValueError(f"cooldown fraction must be in (0, 1), got {fraction!r}")
    return max(1, int(round(fraction * length)))


def schedule_for(kind: str, length: int, *, warmup: int, cooldown_fraction: float = 0.2) -> dict[str, Any] | None:
    """The :mod:`accel.schedules` spec of arm ``kind`` over ``length`` updates (None: Schedule-Free's own)."""
    if kind not in KINDS:
        raise ValueError(f"unknown arm kind {kind!r}; valid: {', '.join(KINDS)}")
    if not isinstance(warmup, int) or not 0 <= warmup < length:
        raise ValueError(f"warmup must be an int in [0, {length}), got {warmup!r}")
    if kind == "schedule_free":
        return None
    ramp = {"warmup_steps": warmup} if warmup else {}
    if kind == "cosine":
        return {"name": "cosine", **ramp}
    if kind == "constant":
        return {"name": "constant", **ramp}
    c = cooldown_steps(length, cooldown_fraction)
    if c > length - warmup:
        raise ValueError(f"a cooldown of {c} steps does not fit {length} steps after a {warmup}-step warm-up")
    return {"name": "wsd", "cooldown_steps": c, "cooldown": kind.split("_")[1], **ramp}


def optimizer_for(kind: str, lr: float, *, warmup: int, weight_decay: float) -> dict[str, Any]:
    """AdamW for the scheduled arms, Schedule-Free AdamW (its warm-up built in) for ``schedule_free``."""
    if kind == "schedule_free":
        return {"name": "adamw_schedulefree", "lr": float(lr), "weight_decay": weight_decay, "warmup_steps": warmup}
    return {"name": "adamw", "lr": float(lr), "weight_decay": weight_decay}


def make_arm(kind: str, lr: float, seeds: Sequence[int], length: int, *, warmup: int, weight_decay: float,
             cooldown_fraction: float = 0.2, evals: Sequence[int] = (), label: str | None = None) -> Arm:
    """One arm of ``kind`` at rate ``lr`` over ``length`` updates, for ``seeds``."""
    return Arm(label or f"{kind}@{length}", optimizer_for(kind, lr, warmup=warmup, weight_decay=weight_decay),
               list(seeds), length, schedule_for(kind, length, warmup=warmup, cooldown_fraction=cooldown_fraction),
               evals=tuple(evals), labels={"kind": kind, "length": length})


def wsd_tree(lr: float, seeds: Sequence[int], lengths: Sequence[int], *, warmup: int, weight_decay: float,
             cooldown_fraction: float = 0.2, shapes: Sequence[str] = ("linear",), evals: Sequence[int] = ()
             ) -> list[Arm]:
    """A constant-rate trunk over ``max(lengths)`` and, per length L and cooldown shape, a WSD
    cooldown branched off it at L − C(L) (Hägele et al. 2024, §3: one run, many lengths).
    ``evals`` (update counts) apply to the trunk and to each branch after it leaves the trunk."""
    longest = max(lengths)
    trunk = make_arm("constant", lr, seeds, longest, warmup=warmup, weight_decay=weight_decay,
                     evals=evals, label="constant")
    arms = [trunk]
    for length in lengths:
        for shape in shapes:
            a = make_arm(f"wsd_{shape}", lr, seeds, length, warmup=warmup, weight_decay=weight_decay,
                         cooldown_fraction=cooldown_fraction, label=f"wsd_{shape}@{length}")
            a.parent, a.branch_at = "constant", length - cooldown_steps(length, cooldown_fraction)
            a.evals = tuple(e for e in evals if a.branch_at < e <= length)
            if a.branch_at < warmup:
                raise ValueError(f"the cooldown of a {length}-step run starts inside the {warmup}-step warm-up")
            arms.append(a)
    return arms


def tune(score: Callable[[list[tuple[str, float]]], Sequence[float]], centres: Mapping[str, float], *,
         n: int = 3, step: float = 0.5, max_rounds: int = 3) -> pd.DataFrame:
    """Each arm's learning rate on the ladder ``step`` decades apart around its centre, extended past
    an edge until its best rate is interior (at most ``max_rounds`` extensions).

    ``score([(arm, lr), ...])`` trains each once and returns one score each (higher is better,
    NaN: diverged). Rows: ``optimizer`` (the arm), ``lr``, ``score``, ``round``; read the best
    with :func:`accel.experiments.tuning.best_learning_rates`.
    """
    if not isinstance(max_rounds, int) or max_rounds < 0:
        raise ValueError(f"max_rounds must be an int >= 0, got {max_rounds!r}")
    pending = [(a, lr) for a, c in centres.items() for lr in ladder(float(c), n, step)]
    rows: list[dict[str, Any]] = []
    for rnd in range(max_rounds + 1):
        scores = list(score(pending))
        if len(scores) != len(pending):
            raise ValueError(f"score() returned {len(scores)} scores for {len(pending)} trials")
        rows += [{"optimizer": a, "lr": float(lr), "score": float(s), "round": rnd} for (a, lr), s in
                 zip(pending, scores)]
        table = pd.DataFrame(rows)
        pending = []
        for a in centres:
            t = table[table.optimizer == a]
            lr = edge_extension(t.lr.to_numpy(), t.score.to_numpy(), step)
            if lr is not None:
                pending.append((a, lr))
        if not pending or rnd == max_rounds:
            break
    return pd.DataFrame(rows).sort_values(["optimizer", "lr"], kind="stable", ignore_index=True)


def arm_scorer(build: Callable[[], nn.Module], train: Split, held_out: Split, kinds: Mapping[str, tuple[str, int]],
               *, seeds: Sequence[int], batch_size: int, warmup: int, weight_decay: float,
               cooldown_fraction: float = 0.2) -> Callable[[list[tuple[str, float]]], list[float]]:
    """A ``score`` for :func:`tune`: trial (arm, lr) trains arm ``kinds[arm] = (kind, length)`` with
    each tuning seed (all trials of a round as one stacked model) and scores the mean held-out
    accuracy over those seeds (more than one seed keeps a rate at the edge of stability for one
    lucky seed from being chosen)."""
    def score(trials: list[tuple[str, float]]) -> list[float]:
        arms = [make_arm(kinds[a][0], lr, seeds, kinds[a][1], warmup=warmup, weight_decay=weight_decay,
                         cooldown_fraction=cooldown_fraction, label=f"{i}") for i, (a, lr) in enumerate(trials)]
        rows, _ = train_arms(build, train, arms, batch_size=batch_size, evals={"held_out": held_out})
        end = rows[rows.step == rows.arm.map({a.label: a.length for a in arms})]
        means = end.groupby("arm").held_out_acc.mean()
        return [float(means[f"{i}"]) for i in range(len(trials))]
    return score


def single_scorer(build: Callable[[], nn.Module], train: Split, held_out: Split,
                  spec: Callable[[float], dict[str, Any]], *, steps: int, seeds: Sequence[int], batch_size: int,
                  schedule: dict[str, Any] | None) -> Callable[[list[tuple[str, float]]], list[float]]:
    """A ``score`` for :func:`tune` over single runs (Muon): ``spec(lr)`` trained once per tuning
    seed, scored by the mean held-out accuracy, as :func:`arm_scorer` scores stacked arms."""
    def score(trials: list[tuple[str, float]]) -> list[float]:
        runs = [{"spec": spec(lr), "seed": s, "trial": i} for i, (_, lr) in enumerate(trials) for s in seeds]
        h = train_each(build, train, runs, steps=steps, batch_size=batch_size, schedule=schedule,
                       evals={"held_out": held_out}, train_eval=1000)
        means = h.groupby("member").tail(1).groupby("trial").held_out_acc.mean()
        return [float(means[i]) for i in range(len(trials))]
    return score


def tuned_single_runs(build: Callable[[], nn.Module], train: Split, held_out: Split,
                      spec: Callable[[float], dict[str, Any]], centre: float, *, name: str, steps: int,
                      tune_seeds: Sequence[int], final_seeds: Sequence[int], batch_size: int,
                      schedule: dict[str, Any] | None, evals: Mapping[str, Split], eval_every: int, n: int = 3,
                      step: float = 0.5, max_rounds: int = 3) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """The protocol of the single-run optimizers (Muon, SOAP, Adam-mini): ``spec(lr)`` tuned by
    :func:`tune` with :func:`single_scorer` from ``centre``, then trained once per final seed at
    the best rate, evaluated on ``evals`` every ``eval_every`` steps. Returns the tuning trials,
    the best trial (``lr``, ``score``, ``interior``) and the finals' rows (one run per seed)."""
    trials = tune(single_scorer(build, train, held_out, spec, steps=steps, seeds=tune_seeds, batch_size=batch_size,
                                schedule=schedule), {name: centre}, n=n, step=step, max_rounds=max_rounds)
    best = best_learning_rates(trials).iloc[0]
    rows = train_each(build, train, [{"spec": spec(best.lr), "seed": s} for s in final_seeds], steps=steps,
                      batch_size=batch_size, schedule=schedule, evals=evals, eval_every=eval_every, train_eval=1000)
    return trials, best, rows


def at_step(rows: pd.DataFrame, arm: str, step: int, metric: str) -> pd.Series:
    """``metric`` of ``arm`` after ``step`` updates, one value per seed (indexed by seed)."""
    r = rows[(rows.arm == arm) & (rows.step == step)]
    if r.empty:
        raise ValueError(f"no rows of arm {arm!r} at step {step}; its steps: {sorted(rows[rows.arm == arm].step)}")
    return r.set_index("seed")[metric].sort_index()


def steps_to_target(rows: pd.DataFrame, metric: str, target: float, by: str = "seed") -> pd.DataFrame:
    """Per ``by`` group, the first evaluated step with ``metric`` ≥ ``target``; ``censored`` (never
    reached) runs carry their last step, a lower bound."""
    out = []
    for key, h in rows.sort_values("step").groupby(by):
        hit = h[h[metric] >= target]
        out.append({by: key, "steps": float(hit.step.iloc[0] if len(hit) else h.step.iloc[-1]),
                    "censored": hit.empty})
    return pd.DataFrame(out)


def seconds_per_step(build: Callable[[], nn.Module], train: Split, spec: Mapping[str, Any], *, steps: int,
                     batch_size: int, seed: int = 0) -> float:
    """CPU seconds per update of one run of ``spec`` (``time.process_time``, one evaluation included)."""
    start = time.process_time()
    train_one(build, train, spec, steps=steps, batch_size=batch_size, seed=seed, train_eval=1)
    return (time.process_time() - start) / steps


def update_singular_values(build: Callable[[], nn.Module], train: Split, spec: Mapping[str, Any], *,
                           batch_size: int, seed: int = 0, name: str | None = None) -> np.ndarray:
    """Singular values of the first update of a hidden weight (``name``: default the first
    tensor Muon orthogonalizes), reshaped to (out, in·k) as Muon does (Jordan et al. 2024)."""
    from ..optim import make_optimizer
    from ..seeding import seed_everything

    seed_everything(int(seed))
    model = build()
    opt = make_optimizer(model, dict(spec))
    hidden = next(g for g in opt.param_groups if g.get("use_muon", True))["params"][0]
    target = dict(model.named_parameters())[name] if name else hidden
    before = target.detach().clone()
    x, y = train
    torch.nn.functional.cross_entropy(model(x[:batch_size]), y[:batch_size]).backward()
    opt.step()
    delta = (target.detach() - before).reshape(len(before), -1)
    return torch.linalg.svdvals(delta.double()).numpy()


def state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes of every tensor in ``optimizer.state`` (the moments an optimizer keeps per parameter)."""
    return int(sum(v.numel() * v.element_size() for s in optimizer.state.values() for v in s.values()
                   if torch.is_tensor(v)))


def adam_mini_state(build: Callable[[], nn.Module], train: Split, *, batch_size: int, lr: float = 1e-3,
                    seed: int = 0) -> dict[str, int]:
    """Optimizer-state bytes of AdamW and of Adam-mini (pytorch_optimizer's ``AdamMini``) after one
    step on the same model and batch. Adam-mini keeps AdamW's first moment per weight but one
    second moment per block (Zhang et al. 2025): for a model that is not a transformer, one per
    tensor, which should about halve the state."""
    from pytorch_optimizer import AdamMini

    from ..seeding import seed_everything

    out = {}
    x, y = train
    for name, make in (("adamw", lambda m: torch.optim.AdamW(m.parameters(), lr=lr)),
                       ("adam_mini", lambda m: AdamMini(m, lr=lr))):
        seed_everything(int(seed))
        model = build()
        opt = make(model)
        torch.nn.functional.cross_entropy(model(x[:batch_size]), y[:batch_size]).backward()
        opt.step()
        out[name] = state_bytes(opt)
    out["parameters"] = int(sum(p.numel() * p.element_size() for p in build().parameters()))
    return out
