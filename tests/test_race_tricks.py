"""The race's book recipes, its EMA trick, Schedule-Free evaluation and parallel = sequential (toy workload)."""
import math
from pathlib import Path

import pytest
import torch

from accel.experiments.race import trial
from accel.experiments.race.race import race
from accel.experiments.race.recipes import RecipeError, load_recipe, recipe_from_dict
from accel.experiments.race.workloads import get_workload

RECIPES = Path(trial.__file__).with_name("recipes")
BOOK = {"adamw_cosine": "adamw", "nadamw_cosine": "nadam", "adam_cosine": "adam", "nesterov_cosine": "nesterov",
        "heavy_ball_cosine": "momentum", "schedule_free_adamw": "adamw_schedulefree", "adamw_wsd": "adamw",
        "muon_adamw": "muon", "sgd_cosine": "sgd", "adadelta_cosine": "adadelta", "rmsprop_cosine": "rmsprop",
        "adagrad_cosine": "adagrad", "radam_cosine": "radam",
        "adamw_ema": "adamw", "soap_cosine": "soap", "adam_mini_cosine": "adam_mini", "shampoo_cosine": "shampoo"}
SEARCHED = recipe_from_dict({"name": "searched", "optimizer": {"name": "sgd", "lr": 0.1},
                             "search_space": {"optimizer.lr": {"low": 0.05, "high": 0.5, "log": True}}})


def targets(error, budget=40):
    return {"toy_blobs": {v: {"target_error": error, "budget_steps": budget} for v in ("base", "heldout")}}


def test_the_book_recipes_load_with_their_optimizer_and_a_search_space():
    found = {p.stem: load_recipe(p) for p in sorted(RECIPES.glob("*.yml"))}
    assert set(BOOK) <= set(found)
    for name, optimizer in BOOK.items():
        r = found[name]
        assert r.name == name and r.optimizer["name"] == optimizer and len(r.search_space) >= 2, name
        assert len({str(c) for c in r.trials(5, study=0)}) == 5, name  # five distinct points
    assert found["schedule_free_adamw"].schedule["name"] == "constant"  # no schedule: Schedule-Free's point
    assert found["adamw_wsd"].schedule["name"] == "wsd"
    assert found["adamw_ema"].tricks["ema_decay"] and found["adamw_ema"].schedule["name"] == "constant"


def test_a_matrix_root_of_non_finite_values_is_a_divergence_not_a_failure(monkeypatch):
    def broken_root(*args, **kwargs):
        raise torch.linalg.LinAlgError("linalg.svd: The algorithm failed to converge because the input matrix "
                                       "contained non-finite values.")

    calls = []
    real_step = torch.optim.SGD.step

    def step(self, closure=None):
        calls.append(1)
        if len(calls) == 7:
            closure()
            broken_root()
        return real_step(self, closure)

    monkeypatch.setattr(torch.optim.SGD, "step", step)
    out = trial.run_trial(get_workload("toy_blobs"), "base", _config({"name": "sgd", "lr": 0.1}),
                          seed=0, budget=20, target=None)
    assert out["diverged"] and math.isnan(out["history"][-1]["error"]) and out["steps_run"] == 6

    def other(self, closure=None):
        raise torch.linalg.LinAlgError("linalg.cholesky: The factorization could not be completed")

    monkeypatch.setattr(torch.optim.SGD, "step", other)
    with pytest.raises(torch.linalg.LinAlgError, match="cholesky"):  # any other linear-algebra error is a bug
        trial.run_trial(get_workload("toy_blobs"), "base", _config({"name": "sgd", "lr": 0.1}),
                        seed=0, budget=20, target=None)


@pytest.mark.parametrize("value, ok", [(None, True), (0.9, True), (0.0, False), (1.0, False), (True, False)])
def test_ema_decay_is_null_or_in_the_open_unit_interval(value, ok):
    raw = {"name": "r", "optimizer": {"name": "sgd", "lr": 0.1}, "tricks": {"ema_decay": value}}
    if ok:
        assert recipe_from_dict(raw).tricks["ema_decay"] == value
    else:
        with pytest.raises(RecipeError, match="ema_decay must be null or a number in"):
            recipe_from_dict(raw)
    with pytest.raises(RecipeError, match="Schedule-Free already evaluates an average"):
        recipe_from_dict({"name": "r", "optimizer": {"name": "adamw_schedulefree", "lr": 1e-3},
                          "tricks": {"ema_decay": 0.9}})


def _config(optimizer, **tricks):
    return {"optimizer": optimizer, "schedule": {"name": "constant"},
            "tricks": {"warmup_fraction": 0.0, "label_smoothing": 0.0, "grad_clip": None, "ema_decay": None, **tricks}}


def test_ema_evaluates_the_exponential_average_of_the_weights(monkeypatch):
    seen = []
    real = trial.RaceEval._error

    def spy(self, net):
        seen.append({k: v.clone() for k, v in net.state_dict().items()})
        return real(self, net)

    monkeypatch.setattr(trial.RaceEval, "_error", spy)
    w = get_workload("toy_blobs")
    grabbed = {}
    real_start = trial.RaceEval.on_train_start

    def start(self, trainer, module):
        real_start(self, trainer, module)
        grabbed["net"], grabbed["probe"] = module.net, self

    monkeypatch.setattr(trial.RaceEval, "on_train_start", start)
    trial.run_trial(w, "base", _config({"name": "sgd", "lr": 0.5}, ema_decay=0.5), seed=0, budget=10, target=None)
    probe, net = grabbed["probe"], grabbed["net"]
    assert probe.averaged is not None and int(probe.averaged.n_averaged) == 10  # one update per step
    last = seen[-1]
    trained = net.state_dict()
    assert any(not torch.equal(last[k], trained[k]) for k in trained)  # not the trained weights ...
    for k, v in probe.averaged.module.state_dict().items():
        assert torch.equal(last[k], v)  # ... but their average


def test_ema_formula_on_a_scalar():
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    p = torch.nn.Linear(1, 1, bias=False)
    avg = AveragedModel(p, multi_avg_fn=get_ema_multi_avg_fn(0.5))
    ema = None
    for value in (1.0, 3.0, 5.0):
        with torch.no_grad():
            p.weight.fill_(value)
        avg.update_parameters(p)
        ema = value if ema is None else 0.5 * ema + 0.5 * value
    assert float(avg.module.weight.detach()) == pytest.approx(ema) == 3.5


def test_schedule_free_trains_in_train_mode_and_is_evaluated_at_x(monkeypatch):
    modes = []
    real = trial.RaceEval._error

    def spy(self, net):
        modes.append(self.trainer_modes())
        return real(self, net)

    def trainer_modes(self):
        return [g["train_mode"] for o in self._trainer.optimizers for g in o.param_groups]

    real_batch_end = trial.RaceEval.on_train_batch_end

    def batch_end(self, trainer, *args):
        self._trainer = trainer
        return real_batch_end(self, trainer, *args)

    monkeypatch.setattr(trial.RaceEval, "_error", spy)
    monkeypatch.setattr(trial.RaceEval, "trainer_modes", trainer_modes, raising=False)
    monkeypatch.setattr(trial.RaceEval, "on_train_batch_end", batch_end)
    out = trial.run_trial(get_workload("toy_blobs"), "base", _config({"name": "adamw_schedulefree", "lr": 0.05}),
                          seed=0, budget=20, target=None)
    assert out["steps_run"] == 20 and len(modes) == 4  # every 5 steps, and it trained in between
    assert all(m == [False] * len(m) for m in modes)  # evaluated in eval mode: the parameters hold x


def test_two_workers_give_the_same_results_as_one(tmp_path):
    one = race(SEARCHED, ["toy_blobs"], targets(0.05), tmp_path / "one", trials=2, studies=1, workers=1)
    two = race(SEARCHED, ["toy_blobs"], targets(0.05), tmp_path / "two", trials=2, studies=1, workers=2)
    assert one.steps == two.steps and math.isfinite(one.steps["toy_blobs"])
    cols = ["workload", "variant", "study", "trial", "seed", "steps_to_target", "best_error"]
    assert one.trials[cols].equals(two.trials[cols])
    for a in sorted((tmp_path / "one").rglob("trial.json")):
        b = tmp_path / "two" / a.relative_to(tmp_path / "one")
        import json
        ha, hb = json.loads(a.read_text())["history"], json.loads(b.read_text())["history"]
        assert [(h["step"], h["error"]) for h in ha] == [(h["step"], h["error"]) for h in hb]


def test_batchnorm_statistics_are_recomputed_at_the_evaluation_point_and_restored_after():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    bn = net[1]
    with torch.no_grad():
        bn.running_mean.fill_(7.0)
        bn.running_var.fill_(9.0)
    x_train = torch.randn(64, 3)
    probe = trial.RaceEval(x_train[:8], torch.zeros(8, dtype=torch.long), 1, 1, None, eval_batch=16, x_train=x_train)
    net.eval()
    saved = probe._recalibrate(net)
    with torch.no_grad():
        h = net[0](x_train)
    assert torch.allclose(bn.running_mean, h.mean(0), atol=1e-5)  # the average over every batch of the pass
    assert bn.momentum == 0.1 and not net.training  # settings put back
    for module, state in saved:
        module.load_state_dict(state)
    assert torch.equal(bn.running_mean, torch.full((4,), 7.0))


def test_every_workload_builds_both_variants_and_its_data_names_exist():
    from accel.data import DATASETS
    from accel.experiments.race.workloads import SYNTHETIC, TOY_WORKLOADS, WORKLOADS
    from accel.models import build_model

    for w in [*WORKLOADS.values(), *TOY_WORKLOADS.values()]:
        assert w.data["name"] in DATASETS or w.data["name"] in SYNTHETIC, w.name
        for variant in ("base", "heldout"):
            assert sum(p.numel() for p in build_model(w.model_spec(variant)).parameters()) > 0, (w.name, variant)
