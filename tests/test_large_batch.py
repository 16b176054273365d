"""Large-batch protocol: scaling rules, warm-up schedules, recipe arms, steps to target, efficiency."""
import math

import numpy as np
import pandas as pd
import pytest
import torch

from accel.experiments.large_batch import (efficiency, fastest_factor, largest_stable, late_change, log_steps,
                                           next_factor, recipe_arms, recipe_finals, run_steps, scaled_lr,
                                           scaling_sweep, steps_per_epoch, steps_to_target, train_arms,
                                           warmup_schedule)
from accel.models import MLP
from accel.schedules import lr_curve


def test_scaling_rules():
    assert scaled_lr(0.1, 1024, 256, "linear") == pytest.approx(0.4)   # Goyal et al.: k× batch, k× lr
    assert scaled_lr(0.1, 1024, 256, "sqrt") == pytest.approx(0.2)
    assert scaled_lr(0.1, 1024, 256, "none") == 0.1
    with pytest.raises(ValueError, match="none, linear, sqrt"):
        scaled_lr(0.1, 1024, 256, "quadratic")


def test_run_steps_is_the_epoch_budget_without_the_last_incomplete_batch():
    assert steps_per_epoch(1000, 300) == 3 and steps_per_epoch(1000, 300, drop_last=False) == 4
    assert run_steps(32000, 512, 5) == 310 and run_steps(32000, 16, 5) == 10000
    with pytest.raises(ValueError, match="exceeds"):
        run_steps(100, 256, 1)
    with pytest.raises(ValueError, match="epochs"):
        run_steps(100, 10, 0)


def test_warmup_starts_at_the_small_batch_rate_over_goyals_fraction():
    sched = warmup_schedule(512, 16, 310)
    assert sched == {"name": "cosine", "warmup_steps": 17, "warmup_start_factor": 1 / 32}   # 5/90 of 310
    lrs = lr_curve(sched, 310, lr=3.2)
    assert lrs[0] == pytest.approx(0.1) and lrs[17] == pytest.approx(3.2)   # η → kη, then cosine
    assert warmup_schedule(16, 16, 1000) == {"name": "cosine"}   # at the baseline the ramp is constant
    with pytest.raises(ValueError, match="warmup_fraction"):
        warmup_schedule(512, 16, 310, 1.5)


def test_recipe_arms_carry_the_rate_by_each_rule():
    arms = recipe_arms(64, 16, 0.05, factors=[0.5, 1.0], seeds=[0, 1, 2], factor_seeds={1.0: [0, 1, 2, 3, 4]},
                       steps=100)
    by = {(a["recipe"], a["factor"]): a for a in arms}
    assert by["linear + warm-up", 1.0]["spec"] == {"name": "momentum", "lr": pytest.approx(0.2)}
    assert by["linear + warm-up", 0.5]["spec"]["lr"] == pytest.approx(0.1)
    assert by["linear + warm-up", 1.0]["seeds"] == [0, 1, 2, 3, 4] and by["linear + warm-up", 0.5]["seeds"] == [0, 1, 2]
    assert by["no scaling", 0.25]["spec"]["lr"] == 0.05 and by["linear", 1.0]["schedule"] == {"name": "cosine"}
    assert by["linear + warm-up", 1.0]["schedule"]["warmup_start_factor"] == 0.25
    assert [a["recipe"] for a in recipe_arms(16, 16, 0.05, factors=[1.0], seeds=[0], steps=10)] == ["linear + warm-up"]


def _history(rows):
    return pd.DataFrame(rows, columns=["batch", "member", "recipe", "factor", "tuning", "seed", "steps_total",
                                       "step", "test_acc"])


def test_steps_to_target_censors_runs_that_never_reach_it_and_picks_the_fastest_factor():
    w = "linear + warm-up"
    h = _history([(64, 0, w, 1.0, True, 0, 50, 20, 0.3), (64, 0, w, 1.0, True, 0, 50, 50, 0.6),
                  (64, 1, w, 0.5, True, 0, 50, 20, 0.8), (64, 1, w, 0.5, True, 0, 50, 50, 0.9),
                  (64, 2, w, 2.0, True, 0, 50, 20, 0.1), (64, 2, w, 2.0, True, 0, 50, 50, 0.1)])
    t = steps_to_target(h, 0.7, "test_acc").set_index("factor")
    assert t.loc[1.0, "steps"] == 50 and not t.loc[1.0, "reached"]   # censored at its budget
    assert t.loc[0.5, "steps"] == 20 and t.loc[0.5, "reached"]
    best = fastest_factor(t.reset_index()).iloc[0]
    assert best.factor == 0.5 and best.reached and not best.interior and next_factor(best) == 0.25
    assert next_factor({"factor": 1.0, "grid": [0.5, 1.0, 2.0]}) is None
    assert next_factor({"factor": 2.0, "grid": [0.5, 1.0, 2.0]}) == 4.0
    logs, censored = log_steps(t.reset_index(), fastest_factor(t.reset_index()), 64)
    assert logs.tolist() == pytest.approx([math.log(20)]) and censored.tolist() == [False]


def test_fastest_factor_prefers_factors_every_seed_reached():
    t = pd.DataFrame({"batch": [8] * 4, "recipe": ["linear + warm-up"] * 4, "factor": [1.0, 1.0, 2.0, 2.0],
                      "steps": [30.0, 40.0, 10.0, 50.0], "reached": [True, True, True, False]})
    assert fastest_factor(t).iloc[0].factor == 1.0   # 2.0 is faster on average but one seed is censored


def test_efficiency_is_one_for_perfect_scaling_and_zero_for_none():
    assert efficiency(800, 200, 32, 128) == pytest.approx(1.0)   # 4× batch, 4× fewer steps
    assert efficiency(200, 200, 128, 512) == pytest.approx(0.0)
    assert efficiency(800, 200, 32, 512) == pytest.approx(0.5)


def test_largest_stable_is_the_top_of_the_trained_prefix():
    ln10 = math.log(10)
    assert largest_stable([0.01, 0.02, 0.04, 0.08], [1.2, 1.3, 2.2, 1.0], ln10) == 0.02   # 0.04 fails first
    assert largest_stable([0.02, 0.01], [1.0, 1.0], ln10) == 0.02
    assert math.isnan(largest_stable([0.01, 0.02], [float("nan"), 1.0], ln10))


def test_late_change_reads_the_last_tenth():
    h = pd.DataFrame({"batch": [8] * 4, "member": [0] * 4, "step": [25, 50, 90, 100],
                      "train_loss": [2.0, 1.0, 0.5, 0.45]})
    assert late_change(h).iloc[0] == pytest.approx(-0.1)


def test_sweep_shares_runs_and_tunes_until_interior():
    torch.manual_seed(0)
    x, y = torch.randn(512, 8), torch.randint(0, 3, (512,))
    x[:, 0] += y.float() * 2   # a learnable signal
    build = lambda: MLP(8, [8], 3)   # noqa: E731
    h = scaling_sweep(build, (x, y), {"test": (x[:128], y[:128])}, batches=[16, 64], base_lr=0.05, epochs=1,
                      seeds=[0, 1, 2], claim_seeds=[0, 1, 2, 3], claim_batches=[64], target=0.5,
                      metric="test_acc", min_tuning_steps=16, max_rounds=1, n_evals=4, train_eval=64)
    finals = recipe_finals(h, 512, 1)
    counts = finals.groupby(["batch", "recipe"]).seed.nunique().to_dict()
    assert counts == {(16, "linear + warm-up"): 4, (64, "linear"): 4, (64, "linear + warm-up"): 4,
                      (64, "no scaling"): 4}
    assert set(h[h.batch == 64].steps_total) == {8, 16}   # recipes at the epoch budget, the grid at >= 16 steps
    grid = h[(h.batch == 64) & h.tuning]
    assert set(grid.steps_total) == {16} and {0.5, 1.0, 2.0} <= set(grid.factor)
    assert not h[(h.batch == 16) & (h.factor == 1.0)].empty and h.groupby(["batch", "member"]).seed.nunique().max() == 1
    t = steps_to_target(h[h.tuning], 0.5, "test_acc")
    assert t.reached.dtype == bool and (t.steps <= t.steps_total).all()


def test_train_arms_numbers_members_across_schedules():
    torch.manual_seed(1)
    x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
    arms = [{"recipe": "a", "spec": {"name": "sgd", "lr": 0.1}, "schedule": {"name": "cosine"}, "seeds": [0, 1]},
            {"recipe": "b", "spec": {"name": "sgd", "lr": 0.1}, "schedule": {"name": "constant"}, "seeds": [0]}]
    h = train_arms(lambda: MLP(4, [4], 2), (x, y), arms, batch=16, steps=4, evals={}, n_evals=2)
    assert sorted(h.member.unique()) == [0, 1, 2] and set(h.batch) == {16} and set(h.steps_total) == {4}
    assert h.groupby("member").recipe.first().tolist() == ["a", "a", "b"]
    assert np.isfinite(h.train_loss).all()
