"""The race chapter's helpers on hand-made trial tables (no training)."""
import math

import numpy as np
import pandas as pd
import pytest

from accel.experiments.race.chapter import (book_recipes, kendall_tau, profile_frame, rank_of, scores_of,
                                            study_steps, with_trials)
from accel.experiments.race.race import RaceResult, workload_times


def result(name, steps_by_study_trial, budget=100, heldout_steps=10.0):
    """A race of one workload 'w': steps_by_study_trial[s][k] = trial k of study s (base); held-out all reach."""
    rows = []
    for s, trials in enumerate(steps_by_study_trial):
        for k, t in enumerate(trials):
            for variant, value in (("base", t), ("heldout", heldout_steps)):
                rows.append({"recipe": name, "study": s, "trial": k, "workload": "w", "variant": variant,
                             "budget": budget, "steps_to_target": value, "seconds_to_target": value / 10})
    rows = pd.DataFrame(rows)
    return RaceResult(name, None, rows, workload_times(rows, "steps_to_target"), workload_times(rows, "seconds_to_target"))


def test_with_trials_keeps_the_first_k_trials_of_each_study():
    r = result("a", [[50, 20, 30], [40, 60, 10], [math.inf, 25, 35]])
    assert r.steps["w"] == 20  # study minima 20, 10, 25 -> median 20
    one = with_trials(r, 1)
    assert one.steps["w"] == 50  # first trials 50, 40, inf -> median 50
    assert with_trials(r, 2).steps["w"] == 25  # minima 20, 40, 25
    assert with_trials(r, 3, study=1).steps["w"] == 10
    with pytest.raises(ValueError, match="cannot rescore with 4"):
        with_trials(r, 4)
    with pytest.raises(ValueError, match="no study 7"):
        with_trials(r, 1, study=7)


def test_study_steps_censors_a_missed_study_at_the_budget():
    values, censored = study_steps(result("a", [[50, 20], [math.inf, math.inf], [30, 40]]), "w")
    assert values == [20, 100, 30] and censored == [False, True, False]


def test_kendall_tau_b_matches_scipy_and_is_nan_when_undefined():
    from scipy.stats import kendalltau

    rng = np.random.default_rng(0)
    for _ in range(5):
        a, b = rng.integers(0, 4, 7).astype(float), rng.integers(0, 4, 7).astype(float)
        names = [f"r{i}" for i in range(7)]
        ours = kendall_tau(dict(zip(names, a)), dict(zip(names, b)))
        assert ours == pytest.approx(kendalltau(a, b).statistic)
    assert kendall_tau({"x": 1, "y": 2}, {"x": 3, "y": 4}) == 1.0
    assert kendall_tau({"x": 1, "y": 2}, {"x": 4, "y": 3}) == -1.0
    assert math.isnan(kendall_tau({"x": 1, "y": 2}, {"x": 1, "y": 1}))


def test_scores_ranks_and_profiles():
    fast, slow = result("fast", [[10], [10], [10]]), result("slow", [[20], [20], [20]])
    scores = scores_of({"fast": fast, "slow": slow})
    assert scores == {"fast": 1.0, "slow": pytest.approx((4 - 2) / 3)}
    assert rank_of(scores, "fast") == 1 and rank_of(scores, "slow") == 2
    assert rank_of({"a": 1.0, "b": 1.0, "c": 0.5}, "b") == 1 and rank_of({"a": 1.0, "b": 1.0, "c": 0.5}, "c") == 3
    prof = profile_frame({"fast": fast, "slow": slow}, [1.0, 1.9, 2.0])
    assert list(prof[prof.recipe == "slow"]["rho"]) == [0.0, 0.0, 1.0]


def test_book_recipes_refuses_an_unknown_name():
    assert list(book_recipes(["adamw_cosine"])) == ["adamw_cosine"]
    with pytest.raises(ValueError, match="unknown recipe.*packaged ones: .*nadamw_cosine"):
        book_recipes(["nope"])


def test_the_trial_cache_key_follows_the_training_code_only(tmp_path):
    from accel.experiments.race.chapter import training_code_hash

    for rel in ("module.py", "optim/info.py", "experiments/race/trial.py", "experiments/race/chapter.py",
                "experiments/other.py", "repro/claims.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x = 1\n")
    before = training_code_hash(tmp_path)
    for rel in ("experiments/race/chapter.py", "experiments/other.py", "repro/claims.py"):
        (tmp_path / rel).write_text("x = 2\n")
        assert training_code_hash(tmp_path) == before, rel
    for rel in ("module.py", "optim/info.py", "experiments/race/trial.py"):
        (tmp_path / rel).write_text("x = 3\n")
        after = training_code_hash(tmp_path)
        assert after != before, rel
        before = after
    pins = tmp_path / "constraints.txt"
    pins.write_text("torch==2.13.0+cpu\n")
    pinned = training_code_hash(tmp_path, pins)
    assert pinned != before and training_code_hash(tmp_path, pins) == pinned
    pins.write_text("torch==2.14.0+cpu\n")
    assert training_code_hash(tmp_path, pins) != pinned  # a new pin of torch: the trials run again


def test_every_packaged_recipe_is_a_book_recipe_and_loads():
    from accel.experiments.race.chapter import BOOK_RECIPES, RECIPES_DIR
    packaged = sorted(p.stem for p in RECIPES_DIR.glob("*.yml"))
    assert sorted(BOOK_RECIPES) == packaged
    loaded = book_recipes(BOOK_RECIPES)
    assert all(r.name == n and r.search_space for n, r in loaded.items())  # each file names itself
