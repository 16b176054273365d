"""The quadratic generator and the iteration counts against the textbook formulas."""
import math

import numpy as np
import pytest
import torch

from accel.experiments import logistic
from accel.experiments.quadratic import (condition_number, count_iterations, gd_iterations, heavy_ball_parameters,
                                         iterate, jacobi_preconditioner, least_squares, least_squares_problem,
                                         loglog_slope, make_quadratic, method_settings, preconditioned_kappa)


@pytest.mark.parametrize("kappa", [1.0, 5.0, 1e4])
@pytest.mark.parametrize("rotate", [False, True])
@pytest.mark.parametrize("spacing", ["log", "linear"])
def test_generator_returns_requested_kappa(kappa, rotate, spacing):
    q = make_quadratic(kappa, dim=6, lmin=0.5, spacing=spacing, rotate=rotate, seed=3)
    eig = torch.linalg.eigvalsh(q.hessian)
    assert condition_number(q.hessian) == pytest.approx(kappa, rel=1e-8)
    assert float(eig[0]) == pytest.approx(0.5) and float(eig[-1]) == pytest.approx(0.5 * kappa)
    assert torch.allclose(q.rotation.T @ q.rotation, torch.eye(6, dtype=torch.float64), atol=1e-12)
    if not rotate:
        assert torch.equal(q.hessian, torch.diag(q.eigenvalues))


def test_generator_rejects_bad_input():
    with pytest.raises(ValueError, match="log, linear"):
        make_quadratic(10, spacing="cubic")
    with pytest.raises(ValueError, match="kappa"):
        make_quadratic(0.5)
    with pytest.raises(ValueError, match="valid: gd, heavy_ball, newton, jacobi"):
        method_settings(make_quadratic(10), "lbfgs")


@pytest.mark.parametrize("kappa", [2.0, 5.0, 50.0, 400.0])
def test_gd_count_matches_formula_in_2d(kappa):
    # In 2-D with both modes excited equally, |1 - αλ| = (κ-1)/(κ+1) for both: the error
    # norm is exactly ρ^k, so the count equals ceil(log tol / log ρ).
    q = make_quadratic(kappa, dim=2)
    assert count_iterations(q, "gd", tol=1e-6).iterations == gd_iterations(kappa, 1e-6)
    assert gd_iterations(kappa, 1e-6) == pytest.approx(kappa / 2 * math.log(1e6), rel=0.1 + 2 / kappa)


def test_one_step_methods():
    for rotate in (False, True):
        q = make_quadratic(1e3, dim=8, rotate=rotate, seed=1)
        assert count_iterations(q, "newton", tol=1e-10).iterations == 1
    assert count_iterations(make_quadratic(1.0, dim=4), "gd").iterations == 1
    assert count_iterations(make_quadratic(1e3, dim=8), "jacobi", tol=1e-10).iterations == 1


def test_heavy_ball_is_polyak_and_scales_like_sqrt_kappa():
    lr, mom = heavy_ball_parameters(1.0, 100.0)
    assert lr == pytest.approx(4 / 121) and mom == pytest.approx((9 / 11) ** 2)
    # torch's SGD momentum equals Polyak's w+ = w - α∇f + β(w - w-)
    q = make_quadratic(30.0, dim=3, rotate=True, seed=0)
    tr = iterate(q, lr, momentum=mom, max_iter=5, tol=1e-30, record=True)
    w = [torch.from_numpy(p) for p in tr.path]
    for k in range(1, 5):
        polyak = w[k] - lr * q.grad(w[k]) + mom * (w[k] - w[k - 1])
        assert torch.allclose(w[k + 1], polyak, atol=1e-12)
    kappas = [10, 100, 1000]
    gd = [count_iterations(make_quadratic(k, 2), "gd").iterations for k in kappas]
    hb = [count_iterations(make_quadratic(k, 2), "heavy_ball").iterations for k in kappas]
    assert 0.95 < loglog_slope(kappas, gd) < 1.05
    assert 0.4 < loglog_slope(kappas, hb) < 0.6


def test_jacobi_fixes_axis_aligned_only():
    axis = make_quadratic(100.0, dim=10)
    rot = make_quadratic(100.0, dim=10, rotate=True, seed=0)
    assert preconditioned_kappa(axis.hessian, jacobi_preconditioner(axis.hessian)) == pytest.approx(1.0)
    assert preconditioned_kappa(rot.hessian, jacobi_preconditioner(rot.hessian)) > 10
    assert preconditioned_kappa(rot.hessian, torch.linalg.inv(rot.hessian)) == pytest.approx(1.0)


def test_least_squares_has_the_quadratic_as_hessian():
    q = make_quadratic(50.0, dim=5, rotate=True, seed=2)
    ls = least_squares(q, outputs=3, seed=0)
    assert torch.allclose(ls.x.T @ ls.x / len(ls.x), q.hessian, atol=1e-10)
    model = ls.model(0, torch.float64)
    w = model.weight
    h = torch.autograd.functional.hessian(lambda m: 0.5 * ((ls.x @ m.T - ls.y) ** 2).sum(1).mean(), w.detach())
    # d²/dW_ij dW_kl = δ_ik H_jl for the row-major weight (outputs × inputs)
    assert torch.allclose(h[0, :, 0, :], q.hessian, atol=1e-10)
    assert torch.allclose(h[0, :, 1, :], torch.zeros(5, 5, dtype=torch.float64), atol=1e-12)


def test_logistic_hessian_and_preprocessing():
    x, y = logistic.breast_cancer()
    assert x.shape == (569, 30)
    white = logistic.preprocess(x, "whitened")
    assert np.allclose(np.cov(white, rowvar=False, bias=True), np.eye(30), atol=1e-8)
    assert condition_number(logistic.hessian(white)) == pytest.approx(1.0)
    std = logistic.preprocess(x, "standardized")
    assert np.allclose(std.mean(0), 0, atol=1e-10) and np.allclose(std.std(0), 1)
    # exact Hessian vs autograd at a nonzero point
    xs, ys = torch.from_numpy(std[:50]), torch.from_numpy(y[:50])
    w0 = torch.linspace(-0.3, 0.3, 31, dtype=torch.float64)

    def f(w):
        return torch.nn.functional.binary_cross_entropy_with_logits(xs @ w[:30] + w[30], ys)
    exact = torch.autograd.functional.hessian(f, w0).numpy()
    assert np.allclose(logistic.hessian(std[:50], w0.numpy()), exact, atol=1e-12)
    with pytest.raises(ValueError, match="raw, centered, standardized, whitened"):
        logistic.preprocess(x, "scaled")


def test_logistic_gd_faster_when_standardized():
    x, y = logistic.breast_cancer()
    std = logistic.gd_steps(logistic.preprocess(x, "standardized"), y, 0.2, 200)
    raw = logistic.gd_steps(x, y, 0.2, 200)
    assert std.reached and std.steps < 50 and not raw.reached


def test_iteration_counts_table():
    from accel.experiments.quadratic import iteration_counts
    kappas = [1.0, 10.0, 100.0]
    table = iteration_counts(kappas, 1e-6, dim=2)
    assert list(table.columns) == ["kappa", "method", "iterations", "converged"] and len(table) == 9
    assert table.converged.all()
    gd = table[table.method == "gd"].iterations.tolist()
    assert gd == [gd_iterations(k, 1e-6) for k in kappas]  # 2-d: the count is the formula exactly
    assert (table[table.method == "newton"].iterations == 1).all()
    hb = table[table.method == "heavy_ball"].set_index("kappa").iterations
    assert hb[100.0] < gd[-1] / 3
    only_gd = iteration_counts([10.0], 1e-6, dim=4, methods=("gd",))
    assert only_gd.method.tolist() == ["gd"]


def test_preconditioning_table_jacobi_only_axis_aligned():
    from accel.experiments.quadratic import PRECONDITIONERS, preconditioning_table
    table = preconditioning_table(100.0, dim=10, tol=1e-6, seed=0)
    assert len(table) == 6 and set(table.preconditioner) == set(PRECONDITIONERS)
    t = table.set_index(["quadratic", "preconditioner"])
    assert t.loc[("axis-aligned", "none (GD)"), "κ(P½HP½)"] == pytest.approx(100.0)
    assert t.loc[("axis-aligned", "Jacobi diag(H)⁻¹"), "κ(P½HP½)"] == pytest.approx(1.0)
    assert t.loc[("rotated", "Jacobi diag(H)⁻¹"), "κ(P½HP½)"] > 10
    assert t.loc[("axis-aligned", "Jacobi diag(H)⁻¹"), "iterations"] == 1
    assert t.loc[("rotated", "Jacobi diag(H)⁻¹"), "iterations"] > 10
    assert (t.xs("Newton H⁻¹", level="preconditioner").iterations == 1).all()
    # the rotation is the seed's: another seed, another rotated quadratic
    other = preconditioning_table(100.0, dim=10, tol=1e-6, seed=1).set_index(["quadratic", "preconditioner"])
    assert other.loc[("rotated", "Jacobi diag(H)⁻¹"), "κ(P½HP½)"] != t.loc[("rotated", "Jacobi diag(H)⁻¹"), "κ(P½HP½)"]


def test_logistic_preprocessing_race():
    x, y = logistic.breast_cancer()
    summary, curves = logistic.preprocessing_race(x, y, target=0.2, max_steps=60)
    assert summary.inputs.tolist() == list(logistic.PREPROCESSING)
    assert list(summary.columns) == ["inputs", "κ(H) at w=0", "steps to loss 0.2", "reached", "final loss"]
    s = summary.set_index("inputs")
    assert s.loc["whitened", "κ(H) at w=0"] == pytest.approx(1.0)
    assert s.loc["raw", "κ(H) at w=0"] / s.loc["standardized", "κ(H) at w=0"] > 100
    assert s.loc["standardized", "reached"] and not s.loc["raw", "reached"]
    assert math.isnan(s.loc["raw", "steps to loss 0.2"])
    for how, group in curves.groupby("inputs", sort=False):
        n = s.loc[how, "steps to loss 0.2"]
        assert len(group) == (int(n) + 1 if s.loc[how, "reached"] else 61)
        assert group.step.tolist() == list(range(len(group)))
        assert group.loss.iloc[-1] == s.loc[how, "final loss"]


def test_least_squares_problem_keeps_the_spectrum_and_draws_the_rest_from_the_seed():
    axis = least_squares_problem(100.0, dim=6, outputs=2)
    rot = least_squares_problem(100.0, dim=6, outputs=2, rotate=True)
    (m0, loss0), (m0b, _), (m1, loss1) = rot(0), rot(0), rot(1)
    assert torch.equal(m0.weight, m0b.weight) and not torch.equal(m0.weight, m1.weight)
    assert float(loss0(m0).detach()) != float(loss1(m1).detach())
    hessians = []
    for problem in (axis, rot):
        model, loss = problem(3)
        wrap = _Wrap(model.double(), loss)
        w0 = model.weight.detach().clone()
        h = torch.autograd.functional.hessian(
            lambda w: torch.func.functional_call(wrap, {"model.weight": w}, ()), w0)
        block = h[0, :, 0, :]
        eig = torch.linalg.eigvalsh(block)
        assert float(eig[0]) == pytest.approx(1.0, rel=1e-8) and float(eig[-1]) == pytest.approx(100.0, rel=1e-8)
        hessians.append(block)
    assert torch.allclose(hessians[0], torch.diag(torch.diagonal(hessians[0])), atol=1e-10)  # axis-aligned
    assert not torch.allclose(hessians[1], torch.diag(torch.diagonal(hessians[1])), atol=1e-3)  # rotated
    (ma, _), (mr, _) = axis(3), rot(3)
    assert torch.equal(ma.weight, mr.weight)  # same seed, same initial weights: the arms are paired


class _Wrap(torch.nn.Module):
    def __init__(self, model, loss):
        super().__init__()
        self.model, self.loss = model, loss

    def forward(self):
        return self.loss(self.model)
