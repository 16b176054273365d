"""Chapter 3's probes (accel.experiments.optimizers) and the helpers added for it to
trajectory, rectification and tuning."""
import numpy as np
import pandas as pd
import pytest
import torch

from accel.data import TensorDataModule
from accel.experiments.optimizers import (STEP_RATIO, WITH_CORRECTION, WITHOUT_CORRECTION, adam_steps,
                                          best_cells, bias_correction_excess, decay_members, decay_spec,
                                          effective_steps, first_step_below, forgetting_steps, heavy_ball_steps,
                                          late_slopes, nesterov_vs_heavy_ball, seed_slopes, sign_changes,
                                          stationary_gradients, terminal_ratio, terminal_steps, weight_decay_grid)
from accel.experiments.rectification import adaptive_lr_variance, variance_excess
from accel.experiments.surfaces import make_surface
from accel.experiments.trajectory import best_path, path
from accel.experiments.tuning import tuned_comparison
from accel.models import MLP


def test_forgetting_steps_and_theory():
    assert forgetting_steps(0.0) == 10
    assert forgetting_steps(0.9) == int(np.ceil(np.log(1e-4) / np.log(0.9))) + 10 == 98
    assert 0.9 ** (forgetting_steps(0.9) - 10) < 1e-4
    with pytest.raises(ValueError):
        forgetting_steps(1.0)
    assert terminal_ratio(0.9, "constant slope") == pytest.approx(10.0)
    assert terminal_ratio(0.9, "alternating slope") == pytest.approx(1 / 1.9)
    with pytest.raises(ValueError, match="valid"):
        terminal_ratio(0.9, "sine")


def test_heavy_ball_terminal_step_matches_polyak():
    mom = heavy_ball_steps([0.0, 0.5, 0.9], eta=0.01)
    assert set(mom.pattern) == {"constant slope", "alternating slope"}
    assert len(mom[(mom.alpha == 0.9) & (mom.pattern == "constant slope")]) == forgetting_steps(0.9)
    first = mom[mom.step == 1]
    assert np.allclose(first[STEP_RATIO], 1.0)          # v_1 = g: the first step is η|g|
    terminal = terminal_steps(mom)
    assert terminal.rel_error.max() < 1e-3
    assert terminal.loc[("constant slope", 0.9), STEP_RATIO] == pytest.approx(10.0, rel=1e-3)


def test_sign_changes_and_first_step_below():
    assert sign_changes(np.array([1.0, -1.0, -2.0, 3.0, 0.0, 4.0])) == 2
    assert sign_changes(np.array([1.0, 2.0])) == 0
    traj = pd.DataFrame({"step": [0, 1, 2, 3], "loss": [1.0, 0.5, 0.1, 0.01]})
    assert first_step_below(traj, 0.2) == 2
    assert np.isnan(first_step_below(traj, 1e-3))


def test_nesterov_damps_the_stiff_direction():
    quad = make_surface("quadratic", kappa=50.0)
    nest = nesterov_vs_heavy_ball(quad, [0.9], lr=1 / 50, steps=400).set_index("method")
    assert nest.loc["Nesterov", "sign changes of y"] < nest.loc["heavy ball", "sign changes of y"]
    assert nest.loc["Nesterov", "steps to 1e-10·f0"] < nest.loc["heavy ball", "steps to 1e-10·f0"]


def test_stationary_gradients_are_seeded():
    g = stationary_gradients(2000, n=50, mean=0.5, seed=3)
    assert g.shape == (2000, 50) and g.dtype == torch.float64
    assert torch.equal(g, stationary_gradients(2000, n=50, mean=0.5, seed=3))
    assert not torch.equal(g, stationary_gradients(2000, n=50, mean=0.5, seed=4))
    assert float(g.mean()) == pytest.approx(0.5, abs=0.02)


def test_adagrad_shrinks_and_rmsprop_does_not():
    grads = stationary_gradients(1000, n=20, seed=0)
    ada = effective_steps(grads, {"AdaGrad": {"name": "adagrad", "lr": 0.1}, "RMSProp": {"name": "rmsprop", "lr": 0.01}})
    assert len(ada) == 2000 and list(ada.columns) == ["optimizer", "step", "delta", "ratio"]
    slopes = late_slopes(ada)
    assert slopes["AdaGrad"] == pytest.approx(-0.5, abs=0.05)
    assert abs(slopes["RMSProp"]) < 0.1


def test_adam_bias_correction_first_step():
    grads = stationary_gradients(100, n=20, seed=0)
    bias = adam_steps(grads, lr=1e-3)
    assert len(bias) == 100 and list(bias.columns) == ["step", WITH_CORRECTION, WITHOUT_CORRECTION]
    assert len(adam_steps(grads, lr=1e-3, steps=10)) == 10
    summary = bias_correction_excess(bias)
    assert summary["first_step"] == pytest.approx(1.0, rel=1e-3)           # corrected: exactly lr
    # uncorrected first step: (1 − β₁)/√(1 − β₂) = 0.1/√0.001 ≈ 3.16 times lr (ε aside)
    assert summary["bias_first"] == pytest.approx(0.1 / np.sqrt(0.001), rel=1e-3)
    assert summary["bias_peak"] >= summary["bias_first"] and summary["bias_peak_step"] >= 1


def test_decay_spec():
    assert decay_spec("Adam + L2", 1e-2, 1e-3) == {"name": "adam", "lr": 1e-2, "weight_decay": 1e-3}
    assert decay_spec("AdamW", 1e-2, 1e-4) == {"name": "adamw", "lr": 1e-2, "weight_decay": pytest.approx(1e-2)}
    with pytest.raises(ValueError, match="valid"):
        decay_spec("SGD", 1e-2, 1e-3)


def _tiny_datamodule(seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 4, generator=gen)
    y = (x[:, 0] > 0).long()
    return TensorDataModule(x[:48], y[:48], x[48:], y[48:], batch_size=16, seed=seed)


def test_weight_decay_grid_rows_and_seeding():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=gen)
    y = (x[:, 0] > 0).long()
    decays = {"Adam + L2": [1e-3, 1e-2], "AdamW": [1e-3]}
    args = (lambda: MLP(4, [8], 2), (x[:48], y[:48]), (x[48:], y[48:]), [1e-2], decays, [0, 1])
    grid = weight_decay_grid(*args, steps=6, batch_size=16)
    assert len(grid) == 6 and list(grid.columns) == ["method", "lr", "decay", "seed", "train accuracy",
                                                     "train loss", "test accuracy"]
    assert grid.seed.tolist() == [0, 1] * 3
    pd.testing.assert_frame_equal(grid, weight_decay_grid(*args, steps=6, batch_size=16))
    with pytest.raises(ValueError, match="distinct"):
        decay_members([1e-2], decays, [0, 0])
    m = decay_members([1e-2], {"AdamW": [1e-3]}, [5])
    assert m == [{"spec": {"name": "adamw", "lr": 1e-2, "weight_decay": pytest.approx(0.1)}, "seed": 5,
                  "method": "AdamW", "decay": 1e-3}]


def _cells():
    rows = []
    for seed in (0, 1, 2):
        for lr in (1e-3, 1e-2, 1e-1):
            for wd in (1e-4, 1e-3, 1e-2):
                # best wd for AdamW: 1e-3 at every lr; for L2: 1e-5 / lr (a diagonal), noise-free
                for method, best in (("AdamW", 1e-3), ("Adam + L2", 1e-5 / lr)):
                    acc = 0.9 - 0.1 * abs(np.log10(wd / best)) + 0.001 * seed
                    rows.append({"method": method, "lr": lr, "decay": wd, "seed": seed, "test accuracy": acc})
    return pd.DataFrame(rows)


def test_best_cells_and_seed_slopes():
    from accel.experiments.tuning import good_region_slope
    grid = _cells()
    cells = best_cells(grid).set_index(["method", "lr"])
    assert cells.loc[("AdamW", 1e-2), "best decay"] == 1e-3 and cells.loc[("AdamW", 1e-2), "interior"]
    assert cells.loc[("Adam + L2", 1e-3), "best decay"] == 1e-2 and not cells.loc[("Adam + L2", 1e-3), "interior"]
    slopes = seed_slopes(grid, lambda c: good_region_slope(c, "lr", "decay", "test accuracy", tol=0.001,
                                                           row_tol=1.0))
    assert list(slopes.index) == [0, 1, 2] and set(slopes.columns) == {"AdamW", "Adam + L2"}
    assert np.allclose(slopes["AdamW"], 0.0) and np.allclose(slopes["Adam + L2"], -1.0)


def test_best_path_takes_the_lowest_final_loss():
    surface = make_surface("quadratic")
    best = best_path(surface, "sgd", [1e-3, 1e-1], 30)
    assert best.lr.iloc[0] == 1e-1
    alone = path(surface, {"name": "sgd", "lr": 1e-1}, 30)
    assert best.loss.iloc[-1] == pytest.approx(alone.loss.iloc[-1], rel=1e-9)
    assert np.allclose(best[["x", "y"]], alone[["x", "y"]], rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError):
        best_path(surface, "sgd", [], 30)
    # a diverging first rate never wins over a finite one (it used to: min() keeps NaN first)
    assert best_path(surface, "sgd", [10.0, 1e-1], 30).lr.iloc[0] == 1e-1
    # options are passed to every rate: AdamW's decay pulls towards the origin
    plain = best_path(surface, "adamw", [1e-1], 30, {"weight_decay": 0.0})
    decayed = best_path(surface, "adamw", [1e-1], 30, {"weight_decay": 1.0})
    assert not plain[["x", "y"]].equals(decayed[["x", "y"]])


def test_lr_paths_match_separate_paths():
    from accel.experiments.trajectory import lr_paths
    surface = make_surface("rosenbrock")
    for name, options in [("adam", {}), ("momentum", {}), ("adamw", {"weight_decay": 0.1}), ("adagrad", {})]:
        together = lr_paths(surface, name, [1e-3, 1e-2], 50, options)
        for lr in (1e-3, 1e-2):
            alone = path(surface, {"name": name, "lr": lr, **options}, 50)
            mine = together[together.lr == lr].reset_index(drop=True)
            assert np.allclose(mine[["x", "y", "loss"]], alone[["x", "y", "loss"]], rtol=1e-9, atol=1e-12), name
    diverged = lr_paths(make_surface("quadratic"), "sgd", [10.0, 1e-2], 100)
    assert len(diverged[diverged.lr == 10.0]) < len(diverged[diverged.lr == 1e-2]) == 101   # stopped at 1e6
    with pytest.raises(ValueError, match="elementwise"):
        lr_paths(surface, "lamb", [1e-2], 5)


def test_variance_excess():
    mc = adaptive_lr_variance(2000, 200, beta2=0.99, seed=0)
    v = variance_excess(mc)
    assert set(v) == {"excess", "rectified_factor", "t0", "late"}
    assert v["t0"] == float(mc[mc.rho > 5].step.iloc[0])
    assert v["excess"] > 3 and 1 <= v["rectified_factor"] < 3
    with pytest.raises(ValueError, match="rho"):
        variance_excess(mc[mc.rho <= 5])


def test_tuned_comparison_retrains_the_best_on_fresh_seeds():
    tune_dm, test_dm = _tiny_datamodule(0), _tiny_datamodule(0)
    trials, finals = tuned_comparison(lambda: MLP(4, [8], 2), tune_dm, test_dm, ["adam"], 2, 1, [0, 1],
                                      tune_seed=0, target=0.0)
    assert len(trials) == 2 and len(finals) == 2
    assert finals.seed.tolist() == [0, 1] and test_dm.seed == 1001   # trained with s + 1000
    assert (finals.lr == trials.loc[trials.val_acc.idxmax(), "lr"]).all()
    assert finals["steps to target"].notna().all()   # target 0 is reached at the first epoch
