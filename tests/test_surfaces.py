import numpy as np
import pytest
import torch

from accel.experiments.surfaces import SURFACES, linear, make_surface, plateau_cliff, quadratic, rosenbrock, saddle
from accel.experiments.trajectory import minimize, path


def _grad(surface, point):
    p = torch.tensor(point, dtype=torch.float64, requires_grad=True)
    surface(p).backward()
    return p.grad


def test_exact_values():
    assert float(quadratic(10)(torch.tensor([1.0, 1.0]))) == 5.5
    assert float(rosenbrock()(torch.tensor([-1.5, 2.0]))) == 12.5
    assert float(saddle()(torch.tensor([2.0, 3.0]))) == -5.0
    # plateau at x >> edge: 1 - exp(-r²) + h·σ(large) ≈ 1 + h
    assert float(plateau_cliff()(torch.tensor([4.0, 0.0]))) == pytest.approx(3.0, abs=1e-6)


@pytest.mark.parametrize("name", [n for n in SURFACES if n != "saddle"])
def test_minima_are_stationary_and_lowest(name):
    s = make_surface(name)
    assert _grad(s, s.minimum).abs().max() < 1e-9
    X, Y, Z = s.grid(101)
    assert float(s(torch.tensor(s.minimum, dtype=torch.float64))) <= Z.min() + 1e-12


def test_saddle_is_a_saddle():
    s = saddle()
    assert s.minimum is None
    assert torch.equal(_grad(s, (0.0, 0.0)), torch.zeros(2, dtype=torch.float64))
    # Hessian diag(2, -2): up along x, down along y
    assert float(s(torch.tensor([0.1, 0.0]))) > 0 > float(s(torch.tensor([0.0, 0.1])))


def test_quadratic_hessian_has_condition_number_kappa():
    h = torch.autograd.functional.hessian(quadratic(25.0), torch.zeros(2, dtype=torch.float64))
    assert torch.allclose(h, torch.diag(torch.tensor([1.0, 25.0], dtype=torch.float64)))


def test_plateau_is_flat_and_cliff_is_steep():
    s = plateau_cliff()
    assert _grad(s, s.start).norm() < 1e-3
    assert _grad(s, (1.5, 0.0)).norm() > 5.0   # h·s/4 = 10 at the edge


def test_bad_input_raises():
    with pytest.raises(ValueError, match="valid: quadratic, rosenbrock"):
        make_surface("himmelblau")
    with pytest.raises(ValueError, match="shape"):
        rosenbrock()(torch.zeros(3))
    with pytest.raises(ValueError, match="kappa"):
        quadratic(0.5)


def test_sgd_path_matches_the_update_rule():
    # one SGD step on the quadratic: p <- p - lr * (x, κ y)
    df = path(quadratic(10.0), {"name": "sgd", "lr": 0.01}, 1, start=(1.0, 1.0))
    assert list(df.columns) == ["surface", "optimizer", "step", "x", "y", "loss"]
    assert df.x.tolist() == pytest.approx([1.0, 0.99]) and df.y.tolist() == pytest.approx([1.0, 0.9])


def test_path_stops_when_it_diverges():
    df = path(quadratic(10.0), {"name": "sgd", "lr": 1.0}, 500)   # lr·κ = 10 > 2: diverges
    assert len(df) < 501 and not np.isfinite(df.loss.iloc[-1]) or abs(df.loss.iloc[-1]) > 1e6


def test_minimize_sees_time_varying_losses():
    seen = []
    minimize(lambda p, t: linear([(-1.0) ** t])(p), [0.0], {"name": "sgd", "lr": 0.5}, 4,
             on_step=lambda t, loss, before, grad, after, opt: seen.append((t, float(grad[0]), float(after[0]))))
    assert seen == [(1, -1.0, 0.5), (2, 1.0, 0.0), (3, -1.0, 0.5), (4, 1.0, 0.0)]


def test_heavy_ball_terminal_step_on_a_constant_slope():
    # v <- αv + g, θ <- θ - ηv: on a constant slope the step tends to η g / (1 - α)
    steps = []
    minimize(lambda p, t: linear([1.0])(p), [0.0], {"name": "sgd", "lr": 0.1, "momentum": 0.9}, 300,
             on_step=lambda t, loss, before, grad, after, opt: steps.append(float(before[0] - after[0])))
    assert steps[0] == pytest.approx(0.1) and steps[-1] == pytest.approx(1.0, rel=1e-9)


def test_plateau_outcome_reads_the_final_loss():
    from accel.experiments.surfaces import plateau_outcome
    assert plateau_outcome(2.999).startswith("stayed on the plateau")
    assert plateau_outcome(1.0).startswith("went down the cliff")
    assert plateau_outcome(1e-4).startswith("reached the bowl")
    assert plateau_outcome(2.0).startswith("left the plateau")
    assert plateau_outcome(float("nan")) == "diverged"
    # the plateau's start really has loss ≈ 3, the bowl ≈ 0
    s = plateau_cliff()
    assert float(s(torch.tensor(s.start, dtype=torch.float64))) == pytest.approx(3.0, abs=0.01)
