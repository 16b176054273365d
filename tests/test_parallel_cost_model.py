"""The α–β cost model: the fit recovers α and β from synthetic timings; the formulas match the math."""
import math

import numpy as np
import pytest

from accel.experiments.parallel import extrapolate
from accel.experiments.parallel.cost_model import (AlphaBeta, data_parallel_step, fit_alpha_beta, gpipe_bubble,
                                                   pipeline_step, relative_errors, ring_allreduce)

SIZES = np.array([2.0 ** k for k in range(8, 26, 2)])


@pytest.mark.parametrize("alpha,beta", [(50e-6, 1 / 2e9), (2e-3, 1 / 0.2e9), (1e-6, 1 / 400e9)])
def test_fit_recovers_alpha_and_beta_from_noiseless_timings(alpha, beta):
    fit = fit_alpha_beta(SIZES, alpha + beta * SIZES)
    assert fit.alpha == pytest.approx(alpha, rel=1e-6)
    assert fit.beta == pytest.approx(beta, rel=1e-6)
    assert fit.bandwidth == pytest.approx(1 / beta, rel=1e-6)


def test_fit_recovers_alpha_and_beta_under_multiplicative_noise():
    rng = np.random.default_rng(0)
    alpha, beta = 80e-6, 1 / 1.5e9
    n = np.repeat(SIZES, 5)
    t = (alpha + beta * n) * rng.lognormal(0.0, 0.05, n.size)  # 5 % timing noise
    fit = fit_alpha_beta(n, t)
    assert fit.alpha == pytest.approx(alpha, rel=0.1)
    assert fit.beta == pytest.approx(beta, rel=0.05)
    assert np.median(np.abs(relative_errors(fit, n, t))) < 0.06


def test_relative_weighting_lets_small_messages_decide_alpha():
    # an absolute least-squares fit would be dominated by the 16 MB point; the relative fit is not
    t = 1e-4 + SIZES / 1e9
    t[-1] *= 1.3  # one slow large message
    fit = fit_alpha_beta(SIZES, t)
    assert fit.alpha == pytest.approx(1e-4, rel=0.2)


def test_fit_keeps_parameters_non_negative():
    fit = fit_alpha_beta([1e3, 1e6], [1e-3, 1e-3])  # flat: no bandwidth term
    assert fit.alpha == pytest.approx(1e-3) and fit.beta >= 0


@pytest.mark.parametrize("n,t,match", [([1, 2], [1.0], "equal length"), ([5, 5], [1.0, 2.0], "two distinct"),
                                        ([1, 2], [0.0, 1.0], "positive"), ([1, 2], [np.nan, 1.0], "finite")])
def test_fit_refuses_bad_input(n, t, match):
    with pytest.raises(ValueError, match=match):
        fit_alpha_beta(n, t)


def test_ring_allreduce_formula():
    link = AlphaBeta(1e-5, 1e-9)
    assert ring_allreduce(1, 1e6, link) == 0.0
    assert ring_allreduce(2, 1e6, link) == pytest.approx(2 * 1e-5 + 1e6 * 1e-9)
    assert ring_allreduce(8, 1e6, link) == pytest.approx(14 * 1e-5 + 2 * 7 / 8 * 1e6 * 1e-9)
    # the bandwidth term approaches 2 n β: it barely grows with p
    assert ring_allreduce(1024, 1e9, AlphaBeta(0, 1e-9)) == pytest.approx(2.0, rel=1e-3)
    with pytest.raises(ValueError, match="p >= 1"):
        ring_allreduce(0, 1.0, link)


def test_gpipe_bubble_formula():
    assert gpipe_bubble(1, 4) == 0.0
    assert gpipe_bubble(2, 1) == 0.5
    assert gpipe_bubble(2, 8) == pytest.approx(1 / 9)
    assert gpipe_bubble(4, 4) == pytest.approx(3 / 7)
    with pytest.raises(ValueError, match="micro-batches"):
        gpipe_bubble(2, 0)


def test_step_models():
    link = AlphaBeta(1e-4, 1e-9)
    assert data_parallel_step(1.0, 1, 1e8, link) == 1.0
    assert data_parallel_step(1.0, 4, 1e8, link) == pytest.approx(0.25 + ring_allreduce(4, 1e8, link))
    # one micro-batch on 2 stages: the whole compute plus one transfer each way
    assert pipeline_step(1.0, 2, 1, 1e6, link) == pytest.approx(1.0 + 2 * link(1e6))
    # many micro-batches: the compute approaches 1/p of the whole
    assert pipeline_step(1.0, 2, 10_000, 0.0, AlphaBeta(0, 0)) == pytest.approx(0.5, rel=1e-3)


def test_extrapolation_is_consistent():
    u = extrapolate.implied_utilization()
    assert 0.2 < u < 0.5  # Krizhevsky et al.'s 5.5 days on two GTX 580s
    hw = extrapolate.hardware()["2013: GTX TITAN, PCIe 3.0"]
    one = extrapolate.step_time(1, 1, hw)
    assert one["activations"] == one["allreduce"] == 0.0
    assert one["compute"] == pytest.approx(128 * 6 * 724e6 / (4.5e12 * u))
    dp2 = extrapolate.step_time(2, 1, hw)
    assert dp2["allreduce"] == pytest.approx(ring_allreduce(2, 4 * 60_965_224, hw.link))
    table = extrapolate.predictions()
    assert list(table.configuration) == [c[0] for c in extrapolate.CONFIGS]
    assert table.speedup.iloc[-1] == pytest.approx(10.5 / 4.8)
    bw = extrapolate.breakeven_bandwidth(4, 10.5 / 7.2, hw)
    slow = extrapolate.Hardware("slow", hw.peak_flops, AlphaBeta(hw.link.alpha, 1 / bw), "test")
    t1, t4 = extrapolate.step_time(1, 1, slow)["step"], extrapolate.step_time(4, 1, slow)["step"]
    assert t1 / t4 == pytest.approx(10.5 / 7.2, rel=1e-6)
    with pytest.raises(ValueError, match="dp >= 1"):
        extrapolate.step_time(0, 1, hw)
    assert math.isfinite(table.filter(like="speed-up").to_numpy().sum())
