"""Time-to-target races: counting, FLOPs, the tuning lattice, seeds and bounds."""
import math

import numpy as np
import pandas as pd
import pytest
import torch

from accel.experiments import races
from accel.experiments.quadratic import least_squares, least_squares_problem, make_quadratic


def _ls(kappa=10.0, dim=4, outputs=2, rotate=False):
    return least_squares(make_quadratic(kappa, dim=dim, rotate=rotate, seed=0), outputs=outputs)


def test_race_counts_updates_and_drops_the_graph():
    ls = _ls(1.0)
    model = ls.model(0, torch.float64)
    race = races.race_to_target(model, ls.loss, {"name": "sgd", "lr": 1.0}, 1e-12, 10)
    assert race.reached and race.steps == 1 and len(race.losses) == 2 and race.cpu_seconds_per_step >= 0
    assert all(p.grad is None for p in model.parameters())
    for name in ("adahessian", "muon", "soap", "shampoo"):
        r = races.race_to_target(ls.model(0), ls.loss, {"name": name, "lr": 1e-2}, 0.0, 3)
        assert r.steps == 3 and not r.reached and r.losses[-1] < r.losses[0]
    with pytest.raises(ValueError, match="max_steps"):
        races.race_to_target(ls.model(0), ls.loss, {"name": "sgd", "lr": 0.1}, 0.0, 0)


def test_relative_target_is_a_fraction_of_the_initial_loss():
    ls = _ls(10.0)
    l0 = float(ls.loss(ls.model(0, torch.float64)).detach())
    absolute = races.race_to_target(ls.model(0, torch.float64), ls.loss, {"name": "sgd", "lr": 0.1}, 1e-3 * l0, 500)
    relative = races.race_to_target(ls.model(0, torch.float64), ls.loss, {"name": "sgd", "lr": 0.1}, 1e-3, 500,
                                    relative=True)
    assert relative.reached and relative.steps == absolute.steps


def test_adahessian_is_newton_on_a_diagonal_quadratic():
    # For diagonal H, |Hz| = diag(H) for every ±1 vector z: at lr 1 (bias-corrected), step one is w − H⁻¹∇f.
    ls = _ls(1e3, dim=8)
    race = races.race_to_target(ls.model(0, torch.float64), ls.loss, {"name": "adahessian", "lr": 1.0, "eps": 1e-12},
                                1e-10, 5, relative=True)
    assert race.reached and race.steps == 1
    rotated = _ls(1e3, dim=8, rotate=True)
    r = races.race_to_target(rotated.model(0, torch.float64), rotated.loss, {"name": "adahessian", "lr": 1.0,
                             "eps": 1e-12}, 1e-10, 5, relative=True)
    assert not r.reached


def test_steps_to():
    assert races.steps_to([3.0, 2.0, 0.5, 0.4], 0.5) == 2.0
    assert math.isnan(races.steps_to([3.0, 2.0], 0.5))


def test_flops_of_a_linear_model_are_forward_and_weight_gradient():
    # x (n×d) @ Wᵀ (d×k): 2ndk forward; ∂L/∂W = gᵀx: 2ndk backward (x needs no gradient).
    ls = _ls(10.0, dim=4, outputs=2)
    n, d, k = ls.x.shape[0], 4, 2
    assert races.flops_per_step(ls.model(0), ls.loss, {"name": "momentum", "lr": 0.01}) == 4 * n * d * k
    assert races.flops_per_step(ls.model(0), ls.loss, {"name": "adam", "lr": 0.01}) == 4 * n * d * k
    ah = races.flops_per_step(ls.model(0), ls.loss, {"name": "adahessian", "lr": 0.01})
    assert ah > 6 * n * d * k  # the Hessian-vector product is a second backward pass


def test_half_decade_lattice():
    assert [races.half_decade(k) for k in (-3, -2, -1, 0, 1)] == [0.0316, 0.1, 0.316, 1.0, 3.16]
    assert races.nearest_k(0.15) == -2 and races.nearest_k(0.02) == -3 and races.nearest_k(3e-3) == -5
    assert races.nearest_k(1e-3) == -6
    with pytest.raises(ValueError, match="positive"):
        races.nearest_k(0.0)


def _gd_problem(kappa=10.0):
    ls = _ls(kappa)
    return lambda seed: (ls.model(seed, torch.float64), ls.loss)


def test_tuning_extends_the_grid_until_the_best_is_inside():
    # GD on λ ∈ [1, 10]: stable below 0.2, best near 2/(λmax+λmin) ≈ 0.18; starting at 1e-3 the
    # grid must grow upwards through 0.00316 … 0.1 until 0.316 diverges.
    t = races.tune_lr(_gd_problem(), {"name": "sgd"}, 1e-3, 1e-6, 2000, seed=0, relative=True)
    assert t.lr == 0.1 and t.interior
    tried = [r["lr"] for r in t.rows]
    assert tried[:3] == [0.00316, 0.001, 0.000316] and 0.316 in tried
    assert not [r for r in t.rows if r["lr"] == 0.316][0]["reached"]
    # starting where every rate diverges, the grid grows towards stable rates
    down = races.tune_lr(_gd_problem(), {"name": "sgd"}, 10.0, 1e-6, 2000, seed=0, relative=True)
    assert down.lr == 0.1 and down.interior
    # a grid too small to contain the optimum says so
    short = races.tune_lr(_gd_problem(), {"name": "sgd"}, 1e-3, 1e-6, 2000, seed=0, relative=True, max_points=3)
    assert not short.interior and len(short.rows) == 3
    with pytest.raises(ValueError, match="max_points"):
        races.tune_lr(_gd_problem(), {"name": "sgd"}, 1e-3, 1e-6, 10, seed=0, max_points=2)


def test_tuned_races_tables_bounds_and_linked_arms():
    seen = {}

    def linked(tuned):
        seen.update(tuned)
        return {}
    tuning, runs, arms = races.tuned_races(least_squares_problem(10.0, dim=4, outputs=2),
                                           {"sgd": {}, "momentum": linked}, 1e-6, 60, tune_seed=9,
                                           seeds=[0, 1, 2], relative=True, early_targets=(0.1,))
    assert seen == {"sgd": arms.set_index("optimizer").loc["sgd", "lr"]}
    assert list(runs.optimizer) == ["sgd"] * 3 + ["momentum"] * 3 and list(runs.seed[:3]) == [0, 1, 2]
    assert (runs.steps_bound[~runs.reached] == 61).all() and runs.steps[~runs.reached].isna().all()
    assert (runs.steps_bound[runs.reached] == runs.steps[runs.reached]).all()
    assert "steps_to_0.1" in runs and (runs["steps_to_0.1"] <= runs["steps_bound"]).all()
    assert set(arms.columns) == {"optimizer", "lr", "interior", "grid_points", "flops_per_step"}
    assert (arms.flops_per_step > 0).all() and set(tuning.optimizer) == {"sgd", "momentum"}
    with pytest.raises(ValueError, match="no grid centre"):
        races.tuned_races(least_squares_problem(10.0, dim=4, outputs=2), {"lbfgs_like": {"name": "lbfgs"}},
                          1e-6, 5, tune_seed=0, seeds=[0])


def test_row_averaged_hutchinson_on_a_diagonal_hessian():
    ls = _ls(100.0, dim=5, outputs=3)
    model = ls.model(0, torch.float64)
    params = list(model.parameters())
    grads = torch.autograd.grad(ls.loss(model), params, create_graph=True)
    (est,) = races.row_averaged_hutchinson(params, grads)
    # d²L/dW_ij dW_kl = δ_ik H_jl with H diagonal: |Hz| = diag(H) exactly, averaged over each row
    expected = ls.quadratic.eigenvalues.mean() * torch.ones(3, 5, dtype=torch.float64)
    assert torch.allclose(est, expected)
    with pytest.raises(ValueError, match="spatial_average"):
        races.race_to_target(ls.model(0), ls.loss, {"name": "adam", "lr": 0.1, "spatial_average": "rows"}, 0.0, 2)
    r = races.race_to_target(ls.model(0), ls.loss, {"name": "adahessian", "lr": 0.1, "spatial_average": "rows"},
                             0.0, 3)
    assert r.steps == 3 and r.losses[-1] < r.losses[0]


def test_summaries_work_and_bounds():
    runs = pd.DataFrame({"optimizer": ["a"] * 3 + ["b"] * 3, "seed": [2, 0, 1] * 2,
                         "reached": [True, True, False, True, True, True],
                         "steps_bound": [10, 12, 101, 4, 5, 6], "cpu_ms_per_step": [1.0] * 3 + [3.0] * 3})
    arms = pd.DataFrame({"optimizer": ["a", "b"], "lr": [0.1, 0.01], "interior": [True, True],
                         "grid_points": [3, 3], "flops_per_step": [100.0, 250.0]})
    work = races.with_work(runs, arms, baseline="a")
    assert list(work.work) == [10, 12, 101, 10, 12.5, 15]
    steps, censored = races.bounds(runs, optimizer="a")
    assert list(steps) == [12, 101, 10] and list(censored) == [False, True, False]  # in seed order
    assert races.steps_text(np.array([4.0, 5, 6]), np.array([True] * 3)) == "5 ± 1"
    assert races.steps_text(np.array([10.0, 12, 101]), np.array([True, True, False])) == "≥ 41 (2/3 reached)"
    assert races.steps_text(np.array([101.0] * 3), np.array([False] * 3)) == "not reached"
    s = races.race_summary(runs, arms, baseline="a").set_index("optimizer")
    assert s.loc["b", "FLOPs per step ÷ a"] == 2.5 and s.loc["b", "CPU time per step ÷ a"] == 3.0
    assert s.loc["a", "work (a steps)"] == "≥ 41" and s.loc["b", "work (a steps)"] == "12"
    with pytest.raises(ValueError, match="baseline"):
        races.with_work(runs, arms, baseline="sgd")


def test_pytorch_optimizer_muon_equals_torch_muon_on_a_hidden_matrix():
    # The chapter's statement that torch.optim.Muon computes the same update (both orthogonalize in bfloat16).
    from pytorch_optimizer import Muon
    torch.manual_seed(0)
    w0, grads = torch.randn(16, 8), [torch.randn(16, 8) for _ in range(4)]
    a, b = torch.nn.Parameter(w0.clone()), torch.nn.Parameter(w0.clone())
    oa = Muon([{"params": [a], "use_muon": True}], lr=0.02, momentum=0.95, nesterov=True, weight_decay=0.0)
    ob = torch.optim.Muon([b], lr=0.02, momentum=0.95, nesterov=True, weight_decay=0.0, adjust_lr_fn=None)
    for g in grads:
        a.grad, b.grad = g.clone(), g.clone()
        oa.step()
        ob.step()
    assert torch.equal(a, b) and not torch.equal(a, w0)


def test_matmul_time_ratio_is_a_positive_ratio():
    assert races.matmul_time_ratio(16, torch.float32, torch.float32, repeats=3) > 0
