import json

import numpy as np
import pytest

from accel.repro import claims, profiles
from accel.repro.results import RESULTS_ENV, Results, load


def test_threshold_and_within_can_fail():
    assert claims.threshold("a", "s", "src", 0.5, "<", 1).verdict == "held"
    assert claims.threshold("a", "s", "src", 1.5, "<", 1).verdict == "failed"
    assert claims.threshold("a", "s", "src", float("nan"), "<", 1).verdict == "failed"
    assert claims.within("a", "s", "src", 0.7, 0.65, 0.76).verdict == "held"
    assert claims.within("a", "s", "src", 0.8, 0.65, 0.76).verdict == "failed"
    with pytest.raises(ValueError, match="valid"):
        claims.threshold("a", "s", "src", 1, "!=", 1)


def test_less_than_uses_the_seed_spread():
    a, b = [1.0, 1.1, 0.9], [2.0, 2.1, 1.9]
    assert claims.less_than("c", "s", "src", a, b).verdict == "held"
    assert claims.less_than("c", "s", "src", b, a).verdict == "failed"
    noisy = [1.0, 3.0, -1.0]
    assert claims.less_than("c", "s", "src", noisy, [1.2, 1.3, 1.1]).verdict == "inconclusive"
    assert claims.less_than("c", "s", "src", [1.0], [2.0]).verdict == "inconclusive"
    se = claims.seed_spread(a, b)
    assert se == pytest.approx(np.sqrt(0.01 / 3 + 0.01 / 3))


def test_equivalent_needs_the_whole_interval_inside_the_margin():
    a, b = [1.00, 1.01, 0.99], [1.02, 1.03, 1.01]
    assert claims.equivalent("e", "s", "src", a, b, margin=0.1).verdict == "held"
    assert claims.equivalent("e", "s", "src", a, [2.0, 2.01, 1.99], margin=0.1).verdict == "failed"
    assert claims.equivalent("e", "s", "src", [0, 1, 2], [0.1, 1.1, 2.1], margin=0.1).verdict == "inconclusive"


def test_verdicts_are_validated():
    with pytest.raises(ValueError):
        claims.Claim("x", "s", "src", "c", 1.0, "probably")


def test_results_record_round_trip(tmp_path, monkeypatch):
    r = Results("nb", "smoke", 3, {"lr": 0.1})
    r.metric("loss", np.float32(0.25))
    r.claim(claims.threshold("nb.loss", "loss small", "src", 0.25, "<", 1))
    with pytest.raises(ValueError, match="twice"):
        r.claim(claims.threshold("nb.loss", "again", "src", 0.25, "<", 1))
    monkeypatch.setenv(RESULTS_ENV, str(tmp_path / "out" / "nb.json"))
    path = r.save()
    rec = load(path)
    assert rec["profile"] == "smoke" and rec["seed"] == 3 and rec["metrics"]["loss"] == 0.25
    assert rec["claims"][0]["verdict"] == "held" and rec["claims"][0]["chapter"] == "nb"
    assert "torch" in rec["versions"] and rec["wall_time_s"] >= 0
    assert list(r.verdict_table().columns) == ["claim", "source", "criterion", "measured", "verdict"]
    path.write_text(json.dumps({**rec, "complete": False}))
    with pytest.raises(ValueError, match="not a complete"):
        load(path)


def test_profiles_resolve_with_overrides():
    table = {"smoke": {"epochs": 1}, "cpu": {"epochs": 5}, "full": {"epochs": 50}}
    assert profiles.resolve("cpu", table) == {"epochs": 5}
    assert profiles.resolve("smoke", table, {"epochs": None}) == {"epochs": 1}
    assert profiles.resolve("full", table, {"epochs": 7}) == {"epochs": 7}
    with pytest.raises(ValueError, match="valid profiles: smoke, cpu, full"):
        profiles.resolve("gpu", table)
    with pytest.raises(ValueError, match="valid knobs: epochs"):
        profiles.resolve("cpu", table, {"epoch": 3})
    with pytest.raises(ValueError, match="expected"):
        profiles.resolve("cpu", {"smoke": {"a": 1}, "cpu": {"b": 1}, "full": {"a": 1}})
