"""The race's own overhead: one trial through ``accel race``'s machinery against the same training called directly.

Both sides train the same workload (``--workload``, default ``digits_mlp``) with the same
recipe (AdamW + warm-up + cosine, its base configuration) for the same number of steps on
one thread (the race's :data:`~accel.experiments.race.runner.TRIAL_THREADS`):

* **race**: :func:`accel.experiments.race.race.race` with one study of one trial per variant,
  ``force=True`` (nothing reused) and an unreachable target, so each trial trains its whole
  step budget: planning and checking the trial, the runner (task hash, folder, atomic JSON
  record), :class:`~accel.experiments.race.trial.RaceEval` (an evaluation every
  ``eval_every`` steps on the test split, which the race leaves out of its reported seconds),
  and the scoring (trial table, CSV, ``race.json``);
* **direct**: the same two models (base and held-out variant) built and trained with
  :class:`accel.module.Classifier` and :func:`accel.training.make_trainer`, no callback.

The two are interleaved ``--repeats`` times after a warm-up of each. Printed: median seconds
of each, their ratio (race / direct), the overhead per trial in milliseconds, and how much
of it is the evaluations (measured by the trials themselves). On a machine shared with other
jobs the medians move; the ratio of interleaved runs moves less.

    .venv/bin/python benchmarks/race.py
    .venv/bin/python benchmarks/race.py --workload toy_blobs --repeats 5
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from pathlib import Path

import torch

from accel.experiments.race.race import race
from accel.experiments.race.recipes import recipe_from_dict, schedule_spec
from accel.experiments.race.runner import TRIAL_THREADS
from accel.experiments.race.targets import budget as step_budget
from accel.experiments.race.workloads import VARIANTS, get_workload
from accel.module import Classifier
from accel.seeding import seed_everything
from accel.training import make_trainer

RECIPE = recipe_from_dict({"name": "bench", "optimizer": {"name": "adamw", "lr": 3e-3, "weight_decay": 1e-4},
                           "schedule": {"name": "cosine"}, "tricks": {"warmup_fraction": 0.05}})


def run_direct(name: str, steps: int) -> float:
    w = get_workload(name)
    config = RECIPE.base_config()
    start = time.perf_counter()
    for k, variant in enumerate(VARIANTS):
        seed_everything(k)
        dm = w.datamodule(seed=k)
        module = Classifier(w.model_spec(variant), dict(config["optimizer"]), schedule_spec(config, steps),
                            total_steps=steps, loss=w.loss)
        epochs = math.ceil(steps / math.ceil(len(dm.x_train) / w.batch_size)) + 1
        make_trainer(epochs, max_steps=steps, limit_val_batches=0).fit(module, datamodule=dm)
    return time.perf_counter() - start


def run_race(name: str, steps: int, out: str) -> tuple[float, float]:
    targets = {name: {v: {"target_error": -1.0, "budget_steps": steps} for v in VARIANTS}}
    start = time.perf_counter()
    res = race(RECIPE, [name], targets, out, trials=1, studies=1, force=True)
    seconds = time.perf_counter() - start
    assert len(res.trials) == 2 and (res.trials["status"] == "done").all(), res.failed
    evals = sum(json.loads(p.read_text())["eval_seconds"] for p in Path(out).rglob("trial.json"))
    return seconds, evals


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workload", default="digits_mlp")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    w = get_workload(args.workload)
    steps = step_budget(w.max_steps)
    torch.set_num_threads(TRIAL_THREADS)
    with tempfile.TemporaryDirectory() as out:
        run_direct(args.workload, steps), run_race(args.workload, steps, out)  # warm-up
        direct, raced, evals = [], [], []
        for _ in range(args.repeats):
            direct.append(run_direct(args.workload, steps))
            s, e = run_race(args.workload, steps, out)
            raced.append(s)
            evals.append(e)
    d, r, e = statistics.median(direct), statistics.median(raced), statistics.median(evals)
    per_trial = (r - d) / len(VARIANTS) * 1000
    print(f"race overhead, {args.workload}: {len(VARIANTS)} trials of {steps} steps (eval every {w.eval_every}), "
          f"{args.repeats} interleaved repeats, {TRIAL_THREADS} thread")
    print(f"  direct (Classifier + make_trainer): {d:.2f} s   race (plan, runner, RaceEval, scoring): {r:.2f} s")
    print(f"  ratio race/direct: {r / d:.3f}   overhead per trial: {per_trial:.0f} ms, of which evaluations "
          f"{e / len(VARIANTS) * 1000:.0f} ms (not counted in the race's seconds)")


if __name__ == "__main__":
    main()
