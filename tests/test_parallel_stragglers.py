"""Stragglers: a synchronous step waits for the slowest process (2 real processes), and the delay model."""
import numpy as np
import pytest

from accel.experiments.parallel.analysis import straggler_table
from accel.experiments.parallel.launch import launch
from accel.experiments.parallel.stragglers import (Delay, expected_max_exponential, simulate_steps,
                                                   straggler_steps)
import pandas as pd

DELAY = 0.05


def one_slow_rank(rank, world):
    return straggler_steps(rank, {1: Delay("fixed", DELAY)}, steps=6, nbytes=1024, seed=0)


def test_every_process_waits_for_the_delayed_one():
    rows = pd.DataFrame([r for part in launch(one_slow_rank, 2, timeout=120) for r in part])
    fast, slow = rows[rows["rank"] == 0], rows[rows["rank"] == 1]
    assert (slow.work >= DELAY).all() and (fast.work < DELAY / 5).all()
    # the fast process's step lasts as long as the slow one's work: it waited at the all-reduce
    assert (fast.step >= 0.9 * DELAY).all()
    rows = rows.assign(arm="one straggler", repeat=0, processes=2)
    base = rows.assign(arm="no delay", step=0.0, work=0.0)
    t = straggler_table(pd.concat([rows, base]))
    slow_arm = t[t.arm == "one straggler"].iloc[0]
    assert slow_arm.step >= slow_arm.max_work > slow_arm.mean_work


def test_delays_have_the_requested_means():
    rng = np.random.default_rng(0)
    for dist in ("exponential", "lognormal"):
        x = Delay(dist, 0.01, base=0.002, sigma=0.5).sample(rng, 200_000)
        assert x.mean() == pytest.approx(0.012, rel=0.01)
        assert x.min() >= 0.002
    assert Delay("fixed", 0.01).sample(rng) == 0.01
    assert Delay("exponential", 0.0).sample(rng) == 0.0  # no injected delay is allowed
    with pytest.raises(ValueError, match="unknown distribution"):
        Delay("uniform", 0.01)
    with pytest.raises(ValueError, match="mean >= 0"):
        Delay("exponential", -1.0)


def test_simulated_step_is_the_expected_maximum():
    rng = np.random.default_rng(1)
    work = rng.exponential(0.01, 200_000)
    for p in (1, 2, 8, 64):
        sim = simulate_steps(work, p, overhead=0.001, steps=20_000, rng=rng)
        assert sim.mean() == pytest.approx(expected_max_exponential(p, 0.01) + 0.001, rel=0.03)
    assert expected_max_exponential(2, 1.0) == pytest.approx(1.5)
    with pytest.raises(ValueError, match="non-empty"):
        simulate_steps(np.array([]), 2, 0.0, 10, rng)
