"""The speed-run loop: recipes refused when impossible, the linear scaling rule, steps to target, determinism."""
import pytest
import torch

from accel.experiments import speedrun
from accel.experiments.speedrun import Recipe, interleaved, run


@pytest.fixture(autouse=True)
def one_thread():
    """As the chapter runs: one thread (two threads on a tiny model are slower, and much slower under load)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _data(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=g)
    t = torch.linspace(0, 1, 40)
    x = torch.sin(6.28 * (y.unsqueeze(1) + 1) * t / 4) + 0.1 * torch.randn(n, 40, generator=g)
    return (x[: n // 2 * 1], y[: n // 2 * 1]), (x[n // 2:], y[n // 2:])


@pytest.mark.parametrize("bad, match", [
    (dict(optimizer="adamx"), "adamx"), (dict(init="he"), "init"), (dict(norm="batch"), "norm"),
    (dict(schedule="cos"), "schedule"), (dict(lr=0), "lr"), (dict(batch=0), "batch"),
    (dict(label_smoothing=1.0), "label_smoothing"), (dict(ema=1.0), "ema"),
    (dict(ema=0.9, lookahead=5), "ema or lookahead"), (dict(augment={"flip": 1}), "augmentation"),
    (dict(warmup=10, horizon=5), "warmup"), (dict(whiten=-1), "whiten")])
def test_impossible_recipes_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        Recipe(**bad)


def test_but_refuses_unknown_fields_and_scaled_batch_is_the_linear_rule():
    r = Recipe()
    with pytest.raises(ValueError, match="no field"):
        r.but("x", learning_rate=1)
    s = r.scaled_batch("big", 400)
    assert (s.batch, s.lr, s.name) == (400, pytest.approx(4e-2), "big")
    assert r.scaled_batch("small", 50).lr == pytest.approx(5e-3)


def test_run_reports_steps_and_seconds_to_each_target_and_is_deterministic():
    train, test = _data()
    recipe = Recipe(batch=20, norm="bn", schedule="linear", warmup=5, horizon=60, whiten=3, ema=0.5)
    a = run(recipe, train, test, seed=3, targets=[0.05, 1.0], max_steps=60, eval_every=5)
    b = run(recipe, train, test, seed=3, targets=[0.05, 1.0], max_steps=60, eval_every=5)
    assert a["steps@0.05"] == 5 and not a["censored@0.05"]          # chance level: the first evaluation
    assert a["censored@1"] and a["steps@1"] == a["steps"] == 60         # the horizon ends the run
    assert 0 < a["seconds@0.05"] <= a["seconds@1"] == a["seconds"]
    assert a["final_acc"] == b["final_acc"] and a["steps@0.05"] == b["steps@0.05"]


def test_run_stops_once_every_target_is_reached():
    train, test = _data()
    out = run(Recipe(batch=20), train, test, seed=0, targets=[0.01], max_steps=500, eval_every=7)
    assert out["steps"] == 7


def test_run_refuses_bad_arguments():
    train, test = _data()
    for kw, match in ((dict(targets=[1.5]), "targets"), (dict(max_steps=0), "max_steps"),
                      (dict(eval_every=0), "eval_every")):
        args = {"seed": 0, "targets": [0.5], "max_steps": 10, "eval_every": 5, **kw}
        with pytest.raises(ValueError, match=match):
            run(Recipe(batch=20), train, test, **args)
    with pytest.raises(ValueError, match="exceeds"):
        run(Recipe(batch=1000), train, test, seed=0, targets=[0.5], max_steps=5, eval_every=5)


def test_interleaving_alternates_the_order_and_refuses_duplicate_names():
    train, test = _data()
    a, b = Recipe(name="a", batch=20), Recipe(name="b", batch=20, lr=1e-3)
    rows = interleaved([a, b], train, test, [0, 1, 2], targets=[0.01], max_steps=5, eval_every=5)
    assert list(rows.recipe) == ["a", "b", "b", "a", "a", "b"]
    with pytest.raises(ValueError, match="distinct"):
        interleaved([a, a], train, test, [0], targets=[0.5], max_steps=5, eval_every=5)


def test_the_whitened_model_starts_with_the_frozen_layer():
    train, _ = _data()
    model = speedrun.build(Recipe(whiten=5), train[0])
    assert model[0].out_channels == 10 and not model[0].conv.weight.requires_grad
    assert model(train[0][:4]).shape == (4, 10)


def test_ablation_keeps_a_winner_and_skips_a_loser():
    train, test = _data()
    base = Recipe(batch=20, lr=1e-3)
    stages = [("rate", [lambda r: r.but("fast", lr=1e-2)]), ("slow", [lambda r: r.but("slower", lr=1e-4)])]
    decide = lambda cand, rows, inc, inc_rows: cand.name == "fast"  # noqa: E731
    final, rows = speedrun.ablate(base, stages, decide, train, test, seeds=[0, 1], targets=[0.01],
                                  max_steps=5, eval_every=5)
    assert final.name == "fast"
    assert rows.groupby("stage").kept.all().to_dict() == {"rate": True, "reference": True, "slow": False}


def test_seconds_per_step_times_each_recipe_and_refuses_bad_arguments():
    train, _ = _data()
    a, b = Recipe(name="a", batch=20), Recipe(name="b", batch=20, whiten=3)
    per = speedrun.seconds_per_step([a, b], train, steps=3, repeats=2)
    assert set(per) == {"a", "b"} and all(0 < v < 1 for v in per.values())
    with pytest.raises(ValueError, match="repeats"):
        speedrun.seconds_per_step([a], train, steps=3, repeats=0)


def test_evaluations_thin_out_with_a_relative_resolution():
    intervals, step = [], 0
    while step < 2000:
        gap = speedrun.next_interval(step, 5, 0.02)
        intervals.append(gap)
        step += gap
    assert intervals[:50] == [5] * 50 and all(g % 5 == 0 for g in intervals)
    assert max(intervals) == 35 and len(intervals) < 2000 / 5 / 2   # 2 % of ~1,900 steps, in multiples of 5
    assert speedrun.next_interval(1000, 5, 0.0) == 5
    train, test = _data()
    with pytest.raises(ValueError, match="resolution"):
        run(Recipe(batch=20), train, test, seed=0, targets=[0.5], max_steps=5, eval_every=5, resolution=1.0)
