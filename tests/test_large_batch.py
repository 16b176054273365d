import math

import numpy as np
import pandas as pd
import pytest
import torch

from accel.callbacks import AccuracyProbe
from accel.experiments.large_batch import (batch_sweep, best_trials, probe_steps, run_specs, scaled_lr,
                               scaling_efficiency, steps_per_epoch)
from accel.schedules import lr_curve
from accel.experiments.tuning import steps_to_target


def test_scaling_rules():
    assert scaled_lr(0.1, 1024, 256, "linear") == pytest.approx(0.4)   # Goyal et al.: k× batch, k× lr
    assert scaled_lr(0.1, 1024, 256, "sqrt") == pytest.approx(0.2)
    assert scaled_lr(0.1, 1024, 256, "none") == 0.1
    with pytest.raises(ValueError, match="none, linear, sqrt"):
        scaled_lr(0.1, 1024, 256, "quadratic")


def test_run_specs_goyal_warmup_starts_at_the_small_batch_lr():
    recipe = {"optimizer": {"name": "momentum", "lr": 0.1}, "base_batch": 256, "scaling": "linear",
              "warmup_epochs": 2, "warmup_start": "goyal"}
    opt, sched, total = run_specs(recipe, 1024, n_train=10240, epochs=5)
    assert opt == {"name": "momentum", "lr": pytest.approx(0.4)} and total == 50
    assert sched == {"name": "cosine", "warmup_steps": 20, "warmup_start_factor": 0.25}
    lrs = lr_curve(sched, total, lr=opt["lr"])
    assert lrs[0] == pytest.approx(0.1) and lrs[20] == pytest.approx(0.4)  # η → kη over the warm-up
    _, plain, _ = run_specs({**recipe, "warmup_epochs": 0}, 1024, 10240, 5)
    assert plain == {"name": "cosine"}


def test_run_specs_rejects_bad_recipes():
    with pytest.raises(ValueError, match="optimizer"):
        run_specs({"lr": 0.1}, 32, 100, 1)
    with pytest.raises(ValueError, match="exceeds"):
        run_specs({"optimizer": {"name": "sgd", "lr": 0.1}}, 256, 100, 1)


def test_steps_and_probe_grid():
    assert steps_per_epoch(1000, 300) == 3 and steps_per_epoch(1000, 300, drop_last=False) == 4
    assert probe_steps(32, per_octave=1, first=4) == [4, 8, 16, 32]
    assert probe_steps(20, per_octave=2, first=4) == [4, 6, 8, 11, 16, 20]
    assert probe_steps(3) == [3]


def test_steps_to_target():
    curve = pd.DataFrame({"step": [4, 8, 16, 32], "acc": [0.2, 0.6, 0.9, 0.85]})
    assert steps_to_target(curve, 0.6, "acc") == 8 and steps_to_target(curve, 0.9, "acc") == 16
    assert math.isnan(steps_to_target(curve, 0.95, "acc"))


def test_scaling_efficiency_is_one_for_perfect_scaling_and_zero_for_none():
    s = pd.Series([800.0, 400.0, 100.0, 100.0], index=[32, 64, 256, 1024])
    e = scaling_efficiency(s)
    assert e["speedup"].tolist()[1:] == pytest.approx([2.0, 4.0, 1.0])
    assert e["efficiency"].tolist()[1:] == pytest.approx([1.0, 1.0, 0.0])


def test_best_trials_picks_the_best_seed_mean_per_group():
    runs = pd.DataFrame({"optimizer": ["a"] * 4 + ["b"] * 2, "recipe": ["x", "x", "y", "y", "z", "z"],
                         "seed": [0, 1, 0, 1, 0, 1], "val_acc": [0.5, 0.7, 0.65, 0.66, np.nan, np.nan]})
    best = best_trials(runs, "optimizer")
    assert set(best[best.optimizer == "a"]["recipe"]) == {"y"} and len(best) == 4


def test_probe_and_sweep_on_a_tiny_problem():
    from accel.data import make_datamodule
    dm = make_datamodule("digits", 64, seed=0, standardize=True)
    model = {"name": "mlp", "in_features": 64, "hidden": [16], "out_features": 10}
    recipes = {"lin": {"optimizer": {"name": "momentum", "lr": 0.05}, "scaling": "linear", "base_batch": 64,
                       "warmup_epochs": 1, "warmup_start": "goyal"}}
    runs, curves = batch_sweep(model, recipes, [64, 256], dm, 2, [0], probe=True)
    n = len(dm.x_train)
    assert runs["steps"].tolist() == [2 * (n // 64), 2 * (n // 256)]
    assert runs["lr"].tolist() == pytest.approx([0.05, 0.2])
    assert not runs["diverged"].any() and runs["val_acc"].between(0, 1).all()
    last = curves[curves.batch == 64].iloc[-1]
    assert last["step"] == 2 * (n // 64)
    assert last["acc"] == pytest.approx(runs["val_acc"].iloc[0], abs=1e-6)  # the probe's last = validation
    probe = AccuracyProbe(torch.zeros(3, 2), torch.zeros(3), [1])
    assert probe.frame().empty


def test_steps_to_target_table_censors_runs_that_never_reach_it():
    from accel.experiments.large_batch import fastest_per_batch, steps_to_target_table
    runs = pd.DataFrame({"recipe": ["a", "a", "b"], "batch": [32, 64, 64], "seed": [0, 0, 0],
                         "steps": [100, 50, 50], "diverged": [False, False, False]})
    curves = pd.DataFrame({"recipe": ["a", "a", "a", "a", "b", "b"], "batch": [32, 32, 64, 64, 64, 64],
                           "seed": [0] * 6, "step": [40, 100, 20, 50, 20, 50],
                           "acc": [0.5, 0.9, 0.3, 0.6, 0.8, 0.9]})
    t = steps_to_target_table(runs, curves, 0.7).set_index(["recipe", "batch"])
    assert t.loc[("a", 32), "steps"] == 100 and t.loc[("a", 32), "reached"]
    assert t.loc[("a", 64), "steps"] == 50 and not t.loc[("a", 64), "reached"]   # censored at its budget
    fast = fastest_per_batch(t.reset_index())
    assert fast.loc[64, "recipe"] == "b" and fast.loc[64, "steps"] == 20 and fast.loc[32, "steps"] == 100


def test_share_point_copies_one_recipes_baseline_to_the_others():
    from accel.experiments.large_batch import share_point
    runs = pd.DataFrame({"recipe": ["w", "w", "n"], "batch": [32, 64, 64], "seed": [0, 0, 0],
                         "val_acc": [0.9, 0.8, 0.5]})
    curves = pd.DataFrame({"recipe": ["w", "w", "n"], "batch": [32, 64, 64], "step": [10, 5, 5],
                           "acc": [0.9, 0.8, 0.5]})
    r, c = share_point(runs, curves, 32, "w", ["n", "l"])
    assert r["recipe"].tolist() == ["w", "w", "n", "n", "l"] and r.index.tolist() == list(range(5))
    assert r[r.batch == 32]["val_acc"].tolist() == [0.9] * 3 and len(runs) == 3   # input left alone
    assert c[(c.batch == 32)]["recipe"].tolist() == ["w", "n", "l"]
    with pytest.raises(ValueError, match="no runs of 'x'"):
        share_point(runs, curves, 32, "x", ["n"])


def test_doubling_efficiency_over_any_pair_of_batches():
    from accel.experiments.large_batch import doubling_efficiency
    s = pd.Series([800.0, 200.0, 200.0], index=[32, 128, 512])
    assert doubling_efficiency(s, 32, 128) == pytest.approx(1.0)   # 4× batch, 4× fewer steps
    assert doubling_efficiency(s, 128, 512) == pytest.approx(0.0)
    assert doubling_efficiency(s, 32, 512) == pytest.approx(0.5)


def test_ratio_spread_is_max_over_min_per_step():
    from accel.experiments.large_batch import ratio_spread
    ratios = pd.DataFrame({"step": [0, 0, 0, 1, 1], "ratio": [1.0, 4.0, 2.0, 3.0, 30.0]})
    assert ratio_spread(ratios).to_dict() == {0: 4.0, 1: 10.0}
