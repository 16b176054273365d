"""accel race end to end on a toy workload whose target and timing are known (seconds on a CPU)."""
import math

import pytest

from accel.experiments.race import runner
from accel.experiments.race.race import compare, plan, race
from accel.experiments.race.recipes import recipe_from_dict

FAST = recipe_from_dict({"name": "fast", "optimizer": {"name": "sgd", "lr": 0.5}})
STUCK = recipe_from_dict({"name": "stuck", "optimizer": {"name": "sgd", "lr": 1e-9}})
SEARCHED = recipe_from_dict({"name": "searched", "optimizer": {"name": "sgd", "lr": 0.1},
                             "search_space": {"optimizer.lr": {"low": 0.05, "high": 0.5, "log": True}}})


def targets(base, heldout=None, budget=40):
    return {"toy_blobs": {"base": {"target_error": base, "budget_steps": budget},
                          "heldout": {"target_error": base if heldout is None else heldout, "budget_steps": budget}}}


def test_a_target_every_model_meets_is_reached_at_the_first_evaluation(tmp_path):
    # any error is <= 1, so every trial reaches the target at its first evaluation: step 5 (eval_every)
    res = race(FAST, ["toy_blobs"], targets(1.0), tmp_path, trials=2, studies=2)
    assert res.steps == {"toy_blobs": 5.0}
    assert (res.trials["steps_to_target"] == 5).all() and len(res.trials) == 8  # 2 variants x 2 x 2
    assert 0 < res.seconds["toy_blobs"] < 60
    assert (tmp_path / "fast" / "trials.csv").is_file() and (tmp_path / "fast" / "race.json").is_file()


def test_time_to_target_is_the_first_evaluation_that_reaches_it(tmp_path):
    res = race(FAST, ["toy_blobs"], targets(0.05), tmp_path, trials=1, studies=1)
    record = runner.cached(plan(FAST, ["toy_blobs"], targets(0.05), tmp_path, trials=1, studies=1)[0])
    hits = [h["step"] for h in record["history"] if h["error"] <= 0.05]
    assert hits and res.steps["toy_blobs"] == hits[0] and hits[0] % 5 == 0
    assert record["history"][-1]["step"] == hits[0]  # the run stops at the target


def test_a_recipe_that_misses_the_target_scores_inf(tmp_path):
    res = race(STUCK, ["toy_blobs"], targets(0.0), tmp_path, trials=1, studies=1)
    assert res.steps["toy_blobs"] == math.inf and res.seconds["toy_blobs"] == math.inf
    assert (res.trials["status"] == "done").all()  # a miss, not a failure
    fast = race(FAST, ["toy_blobs"], targets(0.0), tmp_path, trials=1, studies=1)  # separable: error 0 reached
    assert math.isfinite(fast.steps["toy_blobs"])
    table = compare([res, fast], tmp_path, baseline="stuck")
    assert list(table["recipe"]) == ["fast", "stuck"] and list(table["score"]) == [1.0, 0.0]
    assert table["toy_blobs:ratio"].iloc[1] == math.inf and table["toy_blobs:speedup"].iloc[0] == math.inf
    assert (tmp_path / "scores.json").is_file()


def test_a_heldout_miss_voids_the_workload(tmp_path):
    res = race(FAST, ["toy_blobs"], targets(1.0, heldout=-1.0), tmp_path, trials=1, studies=1)
    base = res.trials[res.trials["variant"] == "base"]
    assert (base["steps_to_target"] == 5).all()
    assert res.steps["toy_blobs"] == math.inf


def test_a_rerun_resumes_from_the_finished_trials(tmp_path):
    first = race(SEARCHED, ["toy_blobs"], targets(1.0), tmp_path, trials=2, studies=1)
    records = sorted(tmp_path.rglob("trial.json"))
    stamps = [p.stat().st_mtime_ns for p in records]
    assert first.skipped == 0 and len(records) == 4
    again = race(SEARCHED, ["toy_blobs"], targets(1.0), tmp_path, trials=2, studies=1)
    assert again.skipped == 4 and again.trials["resumed"].all()
    assert [p.stat().st_mtime_ns for p in records] == stamps and again.steps == first.steps
    more = race(SEARCHED, ["toy_blobs"], targets(1.0), tmp_path, trials=2, studies=2)  # one more study
    assert more.skipped == 4 and len(more.trials) == 8
    changed = race(SEARCHED, ["toy_blobs"], targets(0.5), tmp_path, trials=2, studies=1)  # new target
    assert changed.skipped == 0


def test_a_failing_trial_is_isolated_and_counts_as_a_miss(tmp_path, monkeypatch):
    from accel.experiments.race import trial

    real = trial.run_trial

    def flaky(workload, variant, config, **kw):
        if variant == "heldout":
            raise RuntimeError("boom")
        return real(workload, variant, config, **kw)

    monkeypatch.setattr(trial, "run_trial", flaky)
    res = race(FAST, ["toy_blobs"], targets(1.0), tmp_path, trials=1, studies=1)
    assert [f["variant"] for f in res.failed] == ["heldout"] and "boom" in res.failed[0]["error"]
    assert res.steps["toy_blobs"] == math.inf
    assert len(list(tmp_path.rglob("failed.json"))) == 1
    monkeypatch.setattr(trial, "run_trial", real)  # a rerun retries only the failed trial
    again = race(FAST, ["toy_blobs"], targets(1.0), tmp_path, trials=1, studies=1)
    assert again.skipped == 1 and again.steps["toy_blobs"] == 5 and not again.failed


def test_plan_refuses_before_training(tmp_path):
    with pytest.raises(ValueError, match="no target"):
        plan(FAST, ["digits_mlp"], targets(1.0), tmp_path)
    with pytest.raises(ValueError, match="unknown workload"):
        plan(FAST, ["nope"], targets(1.0), tmp_path)
    with pytest.raises(ValueError, match="trials must be"):
        plan(FAST, ["toy_blobs"], targets(1.0), tmp_path, trials=0)
    assert not any(tmp_path.iterdir())


def test_setting_a_target_median_best_error_over_seeds_and_a_budget_of_four_thirds(tmp_path):
    import json

    from accel.experiments.race import targets as tg

    refs = {"fast": FAST, "stuck": STUCK}
    entry = tg.set_target("toy_blobs", "base", tmp_path, trials=1, seeds=3, references=refs)
    assert entry["reference"] == "fast" and len(entry["seed_best_errors"]) == 3
    assert entry["target_error"] == sorted(entry["seed_best_errors"])[1]  # the median of 3
    assert entry["setter_steps"] == 40 and entry["budget_steps"] == 54 == tg.budget(40)  # ceil(4/3 * 40)
    assert tg.budget(45) == 60
    path = tmp_path / "targets.json"
    path.write_text(json.dumps(tg.empty_targets()))
    assert "not yet set" in json.dumps(tg.load_targets(path)["workloads"]["digits_mlp"])
    tg.record_target("toy_blobs", {"base": entry, "heldout": entry}, path)
    got = tg.target_of(tg.load_targets(path), "toy_blobs")
    assert got["base"]["target_error"] == entry["target_error"]
    data = json.loads(path.read_text())
    data["workloads"]["toy_blobs"]["definition"] = "0ld"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="changed since its target was set"):
        tg.target_of(tg.load_targets(path), "toy_blobs")


def test_the_package_targets_file_says_how_targets_are_set():
    from accel.experiments.race import targets as tg

    data = tg.load_targets()
    assert "median" in data["how"] and "4/3" in data["how"]
    for name, entry in data["workloads"].items():
        assert entry["status"] in ("set", tg.NOT_SET), name
        if entry["status"] == "set":
            assert tg.target_of(data, name)["base"]["budget_steps"] == tg.budget(entry["base"]["setter_steps"])
