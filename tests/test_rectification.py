import numpy as np
import pytest
import torch

from accel.experiments.rectification import (adaptive_lr_variance, approximate_variance, rectification, rho,
                                 rho_inf)


def test_rho_values():
    assert rho_inf(0.999) == pytest.approx(1999.0)
    assert rho_inf(0.9) == pytest.approx(19.0)
    # t = 1: ρ_∞ − 2β/(1 − β) = 2/(1−β) − 1 − 2β/(1−β) = 1
    assert rho(1, 0.999) == pytest.approx(1.0)
    assert rho(2, 0.9) == pytest.approx(19 - 4 * 0.81 / 0.19)
    assert rho(10 ** 6, 0.999) == pytest.approx(1999.0)
    with pytest.raises(ValueError, match="beta2"):
        rho_inf(1.0)


def test_rectification_formula_and_limits():
    t, b = 10, 0.999
    r_t, ri = rho(t, b), 1999.0
    expected = np.sqrt((r_t - 4) * (r_t - 2) * ri / ((ri - 4) * (ri - 2) * r_t))
    assert rectification(t, b) == pytest.approx(expected)
    assert np.isnan(rectification(3, b))                    # ρ_3 < 4: undefined
    assert rectification(10 ** 6, b) == pytest.approx(1.0)
    # r_t² is the ratio of the first-order variances, Var[ψ_∞]/Var[ψ_t]
    ts = np.array([6, 20, 100, 1000])
    ratio = approximate_variance(rho_inf(b)) / approximate_variance(rho(ts, b))
    assert rectification(ts, b) ** 2 == pytest.approx(ratio)


def test_torch_radam_applies_the_same_rectification():
    # constant gradient 1: m̂ = v̂ = 1, so RAdam's step is lr·r_t once ρ_t > 5, else lr·m̂ = lr
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.RAdam([p], lr=0.1, eps=0.0)
    for t in range(1, 30):
        before = float(p.detach())
        p.grad = torch.ones(1, dtype=torch.float64)
        opt.step()
        expected = 0.1 * rectification(t, 0.999) if rho(t, 0.999) > 5 else 0.1
        assert before - float(p.detach()) == pytest.approx(expected, rel=1e-9), t


def test_monte_carlo_variance_matches_chi_square_at_steady_state():
    df = adaptive_lr_variance(n=4000, steps=40, beta2=0.9, seed=0)
    assert list(df.columns) == ["step", "rho", "var_psi", "r", "var_rectified"]
    # t = 1: ψ = 1/|g| has infinite variance: the estimate is huge
    assert df.var_psi.iloc[0] > 10 * df.var_psi.iloc[-1]
    # late: ≈ the first-order value ρ/(2(ρ−2)(ρ−4)) for ρ_∞ = 19 (within Monte Carlo + approximation error)
    assert df.var_psi.iloc[-1] == pytest.approx(float(approximate_variance(19.0)), rel=0.35)
    with pytest.raises(ValueError, match="n >= 2"):
        adaptive_lr_variance(n=1)
