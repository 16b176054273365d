import json

import numpy as np
import pytest

from accel.repro import claims, profiles
from accel.repro.results import RESULTS_ENV, Results, load


def test_results_record_round_trip(tmp_path, monkeypatch):
    r = Results("nb", "smoke", 3, {"lr": 0.1})
    r.metric("loss", np.float32(0.25))
    r.claim(claims.threshold("nb.loss", "loss small", "src", 0.25, "<", 1, kind="check"))
    with pytest.raises(ValueError, match="twice"):
        r.claim(claims.threshold("nb.loss", "again", "src", 0.25, "<", 1, kind="check"))
    monkeypatch.setenv(RESULTS_ENV, str(tmp_path / "out" / "nb.json"))
    path = r.save()
    rec = load(path)
    assert rec["profile"] == "smoke" and rec["seed"] == 3 and rec["metrics"]["loss"] == 0.25
    assert rec["claims"][0]["verdict"] == "held" and rec["claims"][0]["chapter"] == "nb"
    assert rec["claims"][0]["kind"] == "check"
    assert "torch" in rec["versions"] and rec["wall_time_s"] >= 0
    assert list(r.verdict_table().columns) == ["kind", "claim", "source", "criterion", "measured", "verdict"]
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
