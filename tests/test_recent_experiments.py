"""The recent-methods chapter's protocols: stacked arms, branched cooldowns, tuning, targets."""
import math

import numpy as np
import pandas as pd
import pytest
import torch

from accel.experiments.recent import (arm_scorer, at_step, cooldown_steps, make_arm, schedule_for, state_bytes,
                                      steps_to_target, tune, wsd_tree)
from accel.experiments.recent_stacked import Arm, train_arms
from accel.experiments.single_run import train_one
from accel.models import MLP
from accel.schedules import lr_curve


def _data(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long() + 2 * (x[:, 2] > 0).long()
    return x, y


def build():
    return MLP(8, [16], 4)


def test_a_stacked_arm_is_the_single_run_of_its_seed():
    x, y = _data()
    arm = make_arm("cosine", 1e-2, [3, 4], 30, warmup=3, weight_decay=0.01)
    rows, cost = train_arms(build, (x, y), [arm], batch_size=20, train_eval=None)
    for s in (3, 4):
        single, _ = train_one(build, (x, y), arm.spec, steps=30, batch_size=20, seed=s,
                              schedule=arm.schedule)
        assert at_step(rows, arm.label, 30, "train_loss")[s] == pytest.approx(single.train_loss.iloc[-1], rel=1e-4)
    assert cost.member_updates.tolist() == [60]


def test_a_branched_cooldown_is_the_standalone_wsd_run_at_a_fraction_of_the_cost():
    x, y = _data()
    lengths = [20, 40]
    tree = wsd_tree(1e-2, [0, 1], lengths, warmup=4, weight_decay=0.01, shapes=("linear", "sqrt"),
                    evals=(10, 30, 36))
    alone = [make_arm(f"wsd_{s}", 1e-2, [0, 1], L, warmup=4, weight_decay=0.01, label=f"alone_{s}@{L}")
             for L in lengths for s in ("linear", "sqrt")]
    rows, cost = train_arms(build, (x, y), tree + alone, batch_size=20, train_eval=None)
    for L in lengths:
        for s in ("linear", "sqrt"):
            a = at_step(rows, f"wsd_{s}@{L}", L, "train_loss")
            b = at_step(rows, f"alone_{s}@{L}", L, "train_loss")
            np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-5)
    assert sorted(rows[rows.arm == "wsd_linear@40"].step.unique()) == [36, 40]   # evals after the branch
    assert sorted(rows[rows.arm == "constant"].step.unique()) == [10, 30, 36, 40]
    cost = cost.set_index("arm").member_updates
    branched = cost[[a.label for a in tree]].sum()
    # trunk 40 + cooldowns (4 + 8) x 2 shapes, per seed
    assert branched == 2 * (40 + 2 * (4 + 8))
    assert cost[[a.label for a in alone]].sum() == 2 * 2 * (20 + 40)


def test_schedule_free_arms_are_evaluated_at_their_average():
    x, y = _data()
    sf = make_arm("schedule_free", 1e-2, [0], 20, warmup=2, weight_decay=0.0, evals=(10,))
    rows, _ = train_arms(build, (x, y), [sf], batch_size=20, train_eval=None)
    assert rows.step.tolist() == [10, 20]
    assert rows.train_loss.iloc[-1] < math.log(4)


def test_schedules_and_bad_arms():
    assert cooldown_steps(100) == 20 and cooldown_steps(3, 0.1) == 1
    s = schedule_for("wsd_sqrt", 100, warmup=5)
    assert s == {"name": "wsd", "cooldown_steps": 20, "cooldown": "sqrt", "warmup_steps": 5}
    curve = lr_curve(s, 100)
    assert curve[50] == 1.0 and curve[90] == pytest.approx(1 - math.sqrt(10 / 20))
    assert schedule_for("schedule_free", 10, warmup=1) is None
    with pytest.raises(ValueError, match="valid: cosine"):
        schedule_for("onecycle", 10, warmup=1)
    with pytest.raises(ValueError, match="warmup"):
        schedule_for("cosine", 10, warmup=10)
    with pytest.raises(ValueError, match="parent"):
        train_arms(build, _data(), [Arm("b", {"name": "adamw", "lr": 1e-2}, [0], 10, parent="a", branch_at=5)],
                   batch_size=20)
    with pytest.raises(ValueError, match="distinct"):
        a = make_arm("cosine", 1e-2, [0], 10, warmup=1, weight_decay=0.0)
        train_arms(build, _data(), [a, a], batch_size=20)


def test_tune_extends_until_the_best_rate_is_interior():
    calls = []

    def score(trials):
        calls.append(list(trials))
        return [-abs(math.log10(lr) + (2.0 if a == "a" else 0.0)) for a, lr in trials]   # optima 1e-2, 1

    t = tune(score, {"a": 1e-3, "b": 1e-1}, n=3, step=0.5, max_rounds=5)
    best = t.loc[t.groupby("optimizer").score.idxmax()].set_index("optimizer").lr
    assert best["a"] == pytest.approx(1e-2) and best["b"] == pytest.approx(1.0)
    for a in ("a", "b"):
        lrs = sorted(t[t.optimizer == a].lr)
        assert lrs[0] < best[a] < lrs[-1]
    assert len(calls) == 3   # round 0, then one extension per round until both are interior


def test_arm_scorer_scores_each_trial():
    x, y = _data()
    score = arm_scorer(build, (x[:150], y[:150]), (x[150:], y[150:]), {"c": ("cosine", 20), "s": ("schedule_free", 20)},
                       seeds=[0, 1], batch_size=25, warmup=2, weight_decay=0.0)
    out = score([("c", 1e-2), ("s", 1e-2), ("c", 1e-5)])
    assert len(out) == 3 and all(0 <= v <= 1 for v in out)


def test_steps_to_target_censors_runs_that_never_reach_it():
    rows = pd.DataFrame({"seed": [0, 0, 1, 1], "step": [10, 20, 10, 20], "acc": [0.5, 0.9, 0.4, 0.6]})
    out = steps_to_target(rows, "acc", 0.8).set_index("seed")
    assert out.steps.tolist() == [20.0, 20.0] and out.censored.tolist() == [False, True]


def test_state_bytes_counts_adamw_moments():
    model = build()
    opt = torch.optim.AdamW(model.parameters())
    model(torch.randn(4, 8)).sum().backward()
    opt.step()
    n = sum(p.numel() for p in model.parameters())
    assert state_bytes(opt) == 2 * 4 * n + 4 * len(list(model.parameters()))   # two fp32 moments + step


def test_adam_mini_keeps_about_half_of_adamws_state():
    from accel.experiments.recent import adam_mini_state

    mem = adam_mini_state(build, _data(), batch_size=20)
    n = sum(p.numel() for p in build().parameters())
    assert mem["parameters"] == 4 * n and mem["adamw"] == 2 * 4 * n + 4 * 4   # 4 tensors' step counters
    assert 0.45 < mem["adam_mini"] / mem["adamw"] < 0.55


def test_single_scorer_averages_the_tuning_seeds():
    from accel.experiments.recent import single_scorer

    x, y = _data()
    score = single_scorer(build, (x[:150], y[:150]), (x[150:], y[150:]),
                          lambda lr: {"name": "adamw", "lr": lr}, steps=10, seeds=[0, 1], batch_size=25,
                          schedule=None)
    both = score([("a", 1e-2), ("a", 1e-4)])
    one = [single_scorer(build, (x[:150], y[:150]), (x[150:], y[150:]), lambda lr: {"name": "adamw", "lr": lr},
                         steps=10, seeds=[s], batch_size=25, schedule=None)([("a", 1e-2)])[0] for s in (0, 1)]
    assert both[0] == pytest.approx(np.mean(one))


def test_models_a_parameter_stack_would_get_wrong_are_refused():
    x, y = _data()
    arm = Arm("a", {"name": "adamw", "lr": 1e-2}, [0, 1], 10)
    with_bn = lambda: torch.nn.Sequential(torch.nn.Linear(x.shape[1], 8), torch.nn.BatchNorm1d(8),
                                          torch.nn.Linear(8, int(y.max()) + 1))
    with pytest.raises(ValueError, match="BatchNorm running statistics"):
        train_arms(with_bn, (x, y), [arm], batch_size=20)
    with_dropout = lambda: torch.nn.Sequential(torch.nn.Linear(x.shape[1], 8), torch.nn.Dropout(0.5),
                                               torch.nn.Linear(8, int(y.max()) + 1))
    with pytest.raises(ValueError, match="dropout"):
        train_arms(with_dropout, (x, y), [arm], batch_size=20)


def test_tuned_single_runs_tunes_then_trains_each_final_seed_at_the_best_rate():
    from accel.experiments.recent import tuned_single_runs
    x, y = _data()
    spec = lambda lr: {"name": "adamw", "lr": lr, "weight_decay": 0.0}   # noqa: E731
    trials, best, rows = tuned_single_runs(build, (x[:150], y[:150]), (x[150:], y[150:]), spec, 1e-2,
                                           name="adamw", steps=12, tune_seeds=[0], final_seeds=[5, 6],
                                           batch_size=30, schedule={"name": "cosine"},
                                           evals={"test": (x[150:], y[150:])}, eval_every=6, max_rounds=1)
    assert set(trials.optimizer) == {"adamw"} and len(trials) in (3, 4)
    assert best.lr in set(trials.lr) and best.score == trials.score.max()
    assert sorted(rows.seed.unique()) == [5, 6] and sorted(rows.step.unique()) == [6, 12]
    assert (rows.lr == best.lr).all()
    single, _ = train_one(build, (x[:150], y[:150]), spec(best.lr), steps=12, batch_size=30, seed=5,
                          schedule={"name": "cosine"}, evals={"test": (x[150:], y[150:])}, train_eval=1000)
    assert rows[(rows.seed == 5) & (rows.step == 12)].test_acc.iloc[0] == single.test_acc.iloc[-1]
