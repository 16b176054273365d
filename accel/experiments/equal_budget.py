"""The same tuning protocol for every optimizer at one batch size (Nado et al. 2021).

Nado et al. re-ran the LARS and LAMB benchmarks and found that Nesterov momentum and
Adam match or exceed them once every optimizer gets the same hyperparameter search over
the same knobs: learning rate, warm-up length, weight decay and label smoothing (and a
decay schedule, here a cosine for everyone). The protocol here is a small version of
theirs, identical for every optimizer:

1. the **learning rate** on a ladder of rates ``step`` decades apart around the
   optimizer's centre, extended until the best rate is interior
   (:func:`accel.experiments.tuning.tune_learning_rates`), with the other knobs at their
   first candidate;
2. then each other knob in turn (``KNOBS``: warm-up fraction, weight decay, label
   smoothing), trying its other candidates at the best configuration so far and keeping
   a candidate only if it scores higher;
3. every trial is one run with ``tune_seed``, scored by its final accuracy on a held-out
   tuning split; the winner is retrained with fresh seeds and evaluated on the test split.

Runs are :func:`accel.experiments.single_run.train_one` runs (layer-wise rules cannot be
stacked), all with the same data order per seed.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from .large_batch import GOYAL_WARMUP
from .single_run import Split, train_each
from .tuning import best_learning_rates, tune_learning_rates

# The knobs tuned after the learning rate, each with its candidates (the first is the default).
KNOBS: dict[str, tuple[float, ...]] = {
    "warmup_fraction": (GOYAL_WARMUP, 0.25),
    "weight_decay": (0.0, 1e-4, 1e-3),
    "label_smoothing": (0.0, 0.1),
}


def _run(spec: Mapping[str, Any], knobs: Mapping[str, float], batch: int, steps: int, seed: int
         ) -> dict[str, Any]:
    """One run of :func:`~accel.experiments.single_run.train_each`: a linear warm-up from ~0 over the
    first ``warmup_fraction`` of the steps, then cosine decay (Goyal et al. 2017's ramp, as Nado et al.)."""
    warm = min(max(1, int(round(knobs["warmup_fraction"] * steps))), steps - 1)
    schedule = {"name": "cosine", "warmup_steps": warm, "warmup_start_factor": 1e-3}   # a ramp from ~0
    return {"spec": {**spec, "weight_decay": float(knobs["weight_decay"])}, "seed": seed,
            "label_smoothing": float(knobs["label_smoothing"]), "schedule": schedule}


def tune_optimizers(build: Callable[[], torch.nn.Module], train: Split, tune_split: Split, test: Split,
                    names: Sequence[str], *, batch: int, steps: int, tune_seed: int, seeds: Sequence[int],
                    centres: Mapping[str, float], options: Mapping[str, Mapping[str, Any]] | None = None,
                    n: int = 4, step: float = 0.5, max_rounds: int = 3,
                    knobs: Mapping[str, Sequence[float]] = KNOBS, train_eval: int | None = 1000
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tune every optimizer of ``names`` by the protocol above, then retrain each winner with ``seeds``.

    ``options[name]`` are fixed arguments of that optimizer (LAMB's ``adam_debias``); ``knobs``
    (a subset of :data:`KNOBS`) are the knobs tuned after the rate, the others stay at their default.
    Returns ``(trials, finals)``: one row per trial (``optimizer, stage, lr`` and the knobs,
    ``score`` = tuning-split accuracy), and the finals' evaluation rows (test split), one
    run per (optimizer, seed).
    """
    if len(set(seeds)) != len(seeds) or tune_seed in seeds:
        raise ValueError(f"final seeds must be distinct and exclude the tuning seed {tune_seed}, got {list(seeds)}")
    options, knobs = dict(options or {}), {k: tuple(v) for k, v in knobs.items()}
    unknown = set(knobs) - set(KNOBS)
    if unknown:
        raise ValueError(f"unknown knobs {sorted(unknown)}; valid: {', '.join(KNOBS)}")
    default = {k: v[0] for k, v in {**KNOBS, **knobs}.items()}   # knobs not tuned stay at KNOBS' defaults
    common = dict(steps=steps, batch_size=batch, evals={"tune": tune_split}, train_eval=train_eval)
    rows: list[dict[str, Any]] = []

    def score(specs: list[dict[str, Any]], setting: Mapping[str, float]) -> list[float]:
        runs = [_run(s, setting, batch, steps, tune_seed) for s in specs]
        h = train_each(build, train, runs, **common)
        return h.groupby("member").tail(1).sort_values("member").tune_acc.tolist()

    ladder = tune_learning_rates(lambda specs: score(specs, default), names, n=n, step=step,
                                 centres=centres, options=options, max_rounds=max_rounds)
    rows += [{"optimizer": r.optimizer, "stage": "learning rate", "lr": r.lr, **default, "score": r.score}
             for r in ladder.itertuples()]
    best_lr = best_learning_rates(ladder).set_index("optimizer")
    winners = {}
    for name in names:
        spec = dict(best_lr.loc[name, "spec"])
        setting, best = dict(default), float(best_lr.loc[name, "score"])
        for knob, candidates in knobs.items():
            for value in candidates[1:]:
                trial = {**setting, knob: value}
                s = score([spec], trial)[0]
                rows.append({"optimizer": name, "stage": knob, "lr": spec["lr"], **trial, "score": s})
                if np.isfinite(s) and s > best:
                    best, setting = s, trial
        winners[name] = (spec, setting)
    finals = train_each(build, train, [{**_run(spec, setting, batch, steps, s), "optimizer_name": name,
                                        **{f"tuned_{k}": v for k, v in setting.items()}}
                                       for name, (spec, setting) in winners.items() for s in seeds],
                        steps=steps, batch_size=batch, evals={"test": test}, train_eval=train_eval)
    return pd.DataFrame(rows), finals
