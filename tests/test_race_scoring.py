"""accel race's scoring formulas against hand-computed values (no training, no torch)."""
import math

import numpy as np
import pytest

from accel.experiments.race import scoring

INF = math.inf
HISTORY = [{"step": 10, "seconds": 1.5, "error": 0.5}, {"step": 20, "seconds": 2.5, "error": float("nan")},
           {"step": 30, "seconds": 3.5, "error": 0.2}, {"step": 40, "seconds": 4.5, "error": 0.1}]


def test_time_to_target_is_the_first_evaluation_at_or_below_the_target():
    assert scoring.time_to_target(HISTORY, 0.2) == 30  # at, not strictly below
    assert scoring.time_to_target(HISTORY, 0.2, key="seconds") == 3.5
    assert scoring.time_to_target(HISTORY, 0.6) == 10
    assert scoring.time_to_target(HISTORY, 0.05) == INF  # missed within the budget
    assert scoring.time_to_target([], 0.5) == INF
    assert scoring.time_to_target([{"step": 5, "seconds": 1, "error": float("nan")}], 1.0) == INF  # diverged


def test_fastest_trial_per_study_and_the_median_over_studies():
    assert scoring.study_time([30, INF, 20]) == 20
    assert scoring.study_time([INF, INF]) == INF
    assert scoring.workload_time([10, 30, 20]) == 20
    assert scoring.workload_time([10, INF, INF]) == INF  # most studies missed
    assert scoring.workload_time([10, 20, INF]) == 20
    assert scoring.workload_time([10, 20]) == 15
    assert scoring.workload_time([10, INF]) == INF
    assert scoring.ruleset_time([[30, 20], [40, INF], [INF, INF]]) == 40  # median of 20, 40, inf


def test_a_heldout_miss_voids_the_workload():
    base = [[20, 30], [25, 40], [30, 35]]
    assert scoring.ruleset_time(base, [[50], [60], [70]]) == 25
    assert scoring.ruleset_time(base, [[50], [INF], [INF]]) == INF


TIMES = {"A": {"w1": 10.0, "w2": 40.0}, "B": {"w1": 20.0, "w2": 20.0}, "C": {"w1": INF, "w2": 30.0}}


def test_ratios_to_the_best_per_workload():
    r = scoring.ratios(TIMES)
    assert r == {"A": {"w1": 1.0, "w2": 2.0}, "B": {"w1": 2.0, "w2": 1.0}, "C": {"w1": INF, "w2": 1.5}}
    nobody = scoring.ratios({"A": {"w": INF}, "B": {"w": INF}})
    assert nobody == {"A": {"w": INF}, "B": {"w": INF}}
    with pytest.raises(ValueError, match="workloads"):
        scoring.ratios({"A": {"w1": 1.0}, "B": {"w2": 1.0}})


def test_performance_profile_rho_of_tau():
    r = scoring.ratios(TIMES)
    taus = [1.0, 1.5, 2.0, 4.0]
    np.testing.assert_allclose(scoring.profile(r["A"], taus), [0.5, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(scoring.profile(r["C"], taus), [0.0, 0.5, 0.5, 0.5])


def test_score_is_the_normalized_area_under_the_profile_up_to_tau_4():
    # A: ratios 1 and 2 -> area (4-1) + (4-2) over 2 workloads x 3 = 5/6; C: (0 + 2.5)/6
    s = scoring.scores(TIMES)
    assert s["A"] == pytest.approx(5 / 6) and s["B"] == pytest.approx(5 / 6)
    assert s["C"] == pytest.approx(5 / 12)
    assert scoring.score({"w": 1.0}) == 1.0 and scoring.score({"w": INF}) == 0.0
    assert scoring.score({"w": 5.0}) == 0.0  # beyond tau_max counts as nothing
    # the exact step-function integral agrees with a fine numerical one
    taus = np.linspace(1, 4, 300001)
    rho = scoring.profile(scoring.ratios(TIMES)["C"], taus)
    assert np.trapezoid(rho, taus) / 3 == pytest.approx(s["C"], abs=1e-4)


def test_speedup_over_a_baseline():
    up = scoring.speedup(TIMES, "B")
    assert up["A"] == {"w1": 2.0, "w2": 0.5}
    assert up["C"]["w1"] == 0.0 and up["C"]["w2"] == pytest.approx(20 / 30)
    with pytest.raises(ValueError, match="baseline"):
        scoring.speedup(TIMES, "nadamw")
