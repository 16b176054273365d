"""accel race's recipes: YAML checked field by field before any training; seeded Sobol trials."""
import json
from pathlib import Path

import pytest

from accel.experiments.race import cli
from accel.experiments.race.recipes import RecipeError, load_recipe, recipe_from_dict

EXAMPLE = Path(__file__).resolve().parents[1] / "accel/experiments/race/recipes/adamw_cosine.yml"
GOOD = {"name": "r", "optimizer": {"name": "adamw", "lr": 1e-3},
        "search_space": {"optimizer.lr": {"low": 1e-4, "high": 1e-2, "log": True},
                         "tricks.warmup_fraction": {"values": [0.0, 0.1]}}}


def test_the_example_recipe_loads_and_its_trials_are_seeded_quasi_random_points():
    recipe = load_recipe(EXAMPLE)
    assert recipe.name == "adamw_cosine" and recipe.optimizer["name"] == "adamw"
    first, again = recipe.trials(5, study=0), recipe.trials(5, study=0)
    assert first == again  # seeded
    assert first != recipe.trials(5, study=1)  # each study its own search
    lrs = [c["optimizer"]["lr"] for c in first]
    assert all(3e-4 <= lr <= 3e-2 for lr in lrs) and len(set(lrs)) == 5
    assert {c["tricks"]["warmup_fraction"] for c in first} <= {0.0, 0.05, 0.1}


def test_yaml_numbers_without_a_dot_are_accepted():
    recipe = recipe_from_dict({"name": "r", "optimizer": {"name": "adamw", "lr": "1e-3"}})
    assert recipe.optimizer["lr"] == 1e-3


@pytest.mark.parametrize("change, message", [
    ({"optimizer": {"name": "adamx", "lr": 0.1}}, "valid: sgd, momentum"),
    ({"optimizer": {"name": "adamw", "lr": 0.1, "momentum": 0.9}}, "has no argument"),
    ({"optimizer": {"name": "adamw", "lr": -1.0}}, "lr must be a positive"),
    ({"schedule": {"name": "cosinus"}}, "valid: constant"),
    ({"tricks": {"warmup": 0.1}}, "valid: warmup_fraction"),
    ({"tricks": {"label_smoothing": 1.5}}, "label_smoothing must be"),
    ({"tricks": {"grad_clip": 0}}, "grad_clip must be"),
    ({"colour": "red"}, "valid: name, optimizer"),
    ({"search_space": {"lr": {"low": 1, "high": 2}}}, "<section>.<argument>"),
    ({"search_space": {"optimizer.lr": {"low": 1e-2, "high": 1e-4}}}, "low must be below high"),
    ({"search_space": {"optimizer.lr": {"low": 0.0, "high": 1e-2, "log": True}}}, "log range needs low > 0"),
    ({"search_space": {"optimizer.lr": {"low": 1e-4, "high": 1e-2, "step": 2}}}, "valid: low, high, log, values"),
    ({"search_space": {"optimizer.momentum": {"low": 0.1, "high": 0.9}}}, "has no argument"),  # adamw: none
    ({"search_space": {"tricks.warmup_fraction": {"values": [0.0, 1.5]}}}, "warmup_fraction must be"),
])
def test_bad_recipes_are_refused_naming_the_field_and_the_choices(change, message):
    with pytest.raises(RecipeError, match=message):
        recipe_from_dict({**GOOD, **change})


def test_missing_fields_and_bad_files(tmp_path):
    with pytest.raises(RecipeError, match="missing field 'optimizer'"):
        recipe_from_dict({"name": "r"})
    bad = tmp_path / "bad.yml"
    bad.write_text("name: r\noptimizer: {name: adamw, lr: [\n")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(bad)
    with pytest.raises(FileNotFoundError):
        load_recipe(tmp_path / "none.yml")


def test_the_command_refuses_a_bad_recipe_before_any_work(tmp_path, capsys):
    bad = tmp_path / "bad.yml"
    bad.write_text("name: r\noptimizer: {name: adamw, lr: 1.0e-3}\nschedule: {name: cosinus}\n")
    out = tmp_path / "out"
    assert cli.main(["--recipe", str(bad), "--workload", "digits_mlp", "--out", str(out)]) == 2
    assert "unknown schedule 'cosinus'" in capsys.readouterr().err
    assert not out.exists()  # nothing planned, nothing trained


def test_the_command_refuses_a_workload_without_a_target(tmp_path, capsys):
    targets = tmp_path / "targets.json"
    targets.write_text(json.dumps({"workloads": {"digits_mlp": {"status": "not yet set"}}}))
    code = cli.main(["--recipe", str(EXAMPLE), "--workload", "digits_mlp", "--targets", str(targets),
                     "--out", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err
    assert "'digits_mlp' has no target yet" in err and "--set-target digits_mlp" in err
    assert cli.main(["--recipe", str(EXAMPLE), "--workload", "imagenet", "--targets", str(targets)]) == 2
    assert "valid: mnist1d_cnn" in capsys.readouterr().err


def test_accel_race_runs_the_race_module_and_passes_its_exit_status(tmp_path, capfd):
    from accel.repro.cli import main

    bad = tmp_path / "bad.yml"
    bad.write_text("name: r\noptimizer: {name: adamx}\n")
    assert main(["race", "--recipe", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert "unknown optimizer 'adamx'" in capfd.readouterr().err
    assert main(["race", "--list"]) == 0
    assert "digits_mlp" in capfd.readouterr().out
