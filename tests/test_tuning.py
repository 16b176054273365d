import numpy as np
import pandas as pd
import pytest

from accel.experiments.tuning import (best_specs, good_region_slope, holdout, lr_grid, steps_to_target, trial_grid,
                                     tune)
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
