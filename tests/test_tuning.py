import numpy as np
import pandas as pd
import pytest

from accel.experiments.tuning import (best_learning_rates, best_specs, edge_extension, good_region_slope, holdout,
                                     ladder, lr_grid, steps_to_target, trial_grid, tune, tune_learning_rates,
                                     tuning_spread)
from accel.optim import OPTIMIZERS


def test_lr_grid_is_log_spaced_around_the_centre():
    assert lr_grid(1e-3, 3, 2.0) == pytest.approx([1e-4, 1e-3, 1e-2])
    assert lr_grid(0.1, 1) == [0.1]
    with pytest.raises(ValueError):
        lr_grid(-1.0, 3)


def test_every_optimizer_gets_the_same_budget():
    for name in [n for n, info in OPTIMIZERS.items() if info.lr_centre is not None]:
        assert len(trial_grid(name, 4)) == 4
    grid = trial_grid("momentum", 4)
    assert {g["momentum"] for g in grid} == {0.9, 0.98} and len({g["lr"] for g in grid}) == 2
    assert "momentum" not in trial_grid("adam", 4)[0]
    assert len(trial_grid("nesterov", 3)) == 3   # odd budget: lr only
    with pytest.raises(ValueError, match="valid: sgd"):
        trial_grid("adamax", 4)
    with pytest.raises(ValueError, match="budget"):
        trial_grid("adam", 0)


def test_tune_picks_the_best_trial_and_ignores_nan():
    def run(spec):   # a fake training run: best at lr = 1e-3; the largest lr diverges
        acc = np.nan if spec["lr"] > 5e-3 else 1 - abs(np.log10(spec["lr"]) + 3) / 10
        return pd.DataFrame({"epoch": [1, 2], "step": [10, 20], "val_acc": [0.1, acc]})
    trials = tune(run, ["adam", "rmsprop"], 3)
    assert len(trials) == 6 and trials.val_acc.isna().sum() == 2
    best = best_specs(trials)
    assert best["adam"] == {"name": "adam", "lr": pytest.approx(1e-3)}


def test_steps_to_target():
    h = pd.DataFrame({"step": [10, 20, 30], "val_acc": [0.5, 0.8, 0.7]})
    assert steps_to_target(h, 0.75) == 20
    assert np.isnan(steps_to_target(h, 0.9))


def _grid(fn):
    xs, ys = 10.0 ** np.arange(-4, 0), 10.0 ** np.arange(-5, 0)
    return pd.DataFrame([{"lr": x, "wd": y, "acc": fn(np.log10(x), np.log10(y))} for x in xs for y in ys])


def test_good_region_slope_diagonal_and_axis_aligned():
    diagonal = _grid(lambda lx, ly: 1 - 0.1 * abs(lx + ly + 5))     # best wd = 10^-5 / lr
    aligned = _grid(lambda lx, ly: 1 - 0.1 * abs(ly + 3) - 0.01 * abs(lx + 2))  # best wd = 1e-3
    assert good_region_slope(diagonal, "lr", "wd", "acc", tol=0.001, row_tol=1.0) == pytest.approx(-1.0)
    assert good_region_slope(aligned, "lr", "wd", "acc", tol=0.001, row_tol=1.0) == pytest.approx(0.0, abs=1e-12)
    # only one row good enough: no slope
    assert np.isnan(good_region_slope(_grid(lambda lx, ly: float(lx == -2)), "lr", "wd", "acc", row_tol=0.5))


def test_holdout_never_validates_on_the_test_set():
    tune_dm, test_dm = holdout("digits", 32, fraction=0.25, train_size=500)
    assert len(tune_dm.x_train) == 500
    assert (tune_dm.x_train == test_dm.x_train).all()
    assert len(tune_dm.x_test) == round(0.25 * 1437) and len(test_dm.x_test) == 360
    with pytest.raises(ValueError, match="fraction"):
        holdout("digits", fraction=1.0)


def test_ladder_and_edge_extension():
    assert ladder(1e-2, 5) == pytest.approx([1e-3, 10 ** -2.5, 1e-2, 10 ** -1.5, 1e-1])
    assert ladder(1e-2, 1) == [1e-2]
    lrs = ladder(1e-2, 3)
    assert edge_extension(lrs, [0.5, 0.9, 0.6]) is None
    assert edge_extension(lrs, [0.9, 0.5, 0.1]) == pytest.approx(10 ** -3)
    assert edge_extension(lrs, [0.1, 0.5, 0.9]) == pytest.approx(10 ** -1)
    assert edge_extension(lrs, [0.5, 0.6, np.nan]) is None   # a diverged rate above is worse, never best
    assert edge_extension(lrs, [np.nan] * 3) == pytest.approx(10 ** -3)        # all diverged: go lower
    with pytest.raises(ValueError):
        ladder(1e-2, 0)


def _peaked(best):   # a fake training run whose held-out accuracy peaks at lr = best[name]
    def run(specs):
        return [np.nan if s["lr"] > 30 * best[s["name"]] else 0.9 - 0.1 * abs(np.log10(s["lr"] / best[s["name"]]))
                for s in specs]
    return run


def test_tune_learning_rates_extends_until_interior():
    best = {"adam": 1e-1, "sgd": 1e-2}            # adam's optimum is far above its centre (1e-3)
    calls = []
    run = _peaked(best)
    trials = tune_learning_rates(lambda specs: calls.append(len(specs)) or run(specs), ["adam", "sgd"], n=3,
                                 centres={"sgd": 1e-2}, options={"sgd": {"momentum": 0.9}})
    assert calls[0] == 6 and all(c <= 2 for c in calls[1:])
    tuned = best_learning_rates(trials).set_index("optimizer")
    assert tuned.loc["adam", "lr"] == pytest.approx(1e-1) and tuned.interior.all()
    assert tuned.loc["sgd", "trials"] == 3 and tuned.loc["sgd", "spec"] == {"name": "sgd", "lr": pytest.approx(1e-2),
                                                                          "momentum": 0.9}
    steps = np.diff(np.log10(trials[trials.optimizer == "adam"].lr))
    assert np.allclose(steps, 0.5)               # the same resolution everywhere
    capped = best_learning_rates(tune_learning_rates(run, ["adam"], n=3, max_rounds=1))
    assert not capped.interior.iloc[0]           # not enough rounds: reported, not hidden
    with pytest.raises(ValueError, match="centre"):
        tune_learning_rates(run, ["adahessian"], n=3)


def test_tuning_spread_uses_one_metric_and_chance_for_diverged():
    trials = pd.DataFrame({"optimizer": ["a"] * 3 + ["b"] * 3, "lr": [1e-3, 10 ** -2.5, 1e-2] * 2,
                           "score": [0.5, 0.9, 0.7, 0.6, 0.8, np.nan]})
    spread = tuning_spread(trials, worst=0.1)
    # across: best a 0.9, best b 0.8 → 0.1; within: a loses (0.4 + 0.2)/2 = 0.3, b (0.2 + 0.7)/2 = 0.45
    assert spread["across"] == pytest.approx(0.1) and spread["within"] == pytest.approx(0.375)
    assert spread["ratio"] == pytest.approx(0.1 / 0.375)
    with pytest.raises(ValueError, match="decades"):
        tuning_spread(trials[trials.lr == 1e-3], worst=0.1)   # one rate per optimizer: no neighbour
