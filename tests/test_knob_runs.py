"""Chapter 8's vectorized runs: each member is the run it would be alone; tuning, targets, same-sign rows."""
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from accel.data.augment import Augment
from accel.data.samplers import LossProportional, Reshuffled, Sorted
from accel.experiments.data_knobs import (log_slope, plateau, same_sign, same_sign_table, second_weight,
                                          steps_to_target, tuned_speed)
from accel.experiments.knob_runs import Arm, Variant, train_arms
from accel.experiments.knob_tuning import best_rates, speed_score, tune_arms
from accel.models import build_model
from accel.seeding import seed_everything

SPEC = {"name": "mlp", "in_features": 6, "hidden": [8], "out_features": 3}


def toy(n=120, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    return {"default": Variant(x, y, x[:40], y[:40]), "shifted": Variant(x + 2, y, x[:40] + 2, y[:40])}


def alone(spec, opt, data, seed, steps, batch, order=Reshuffled()):
    """The reference: one network, one torch optimizer, the order's batches."""
    seed_everything(seed)
    net = build_model(spec)
    o = torch.optim.SGD(net.parameters(), lr=opt["lr"], momentum=opt.get("momentum", 0.0))
    per_epoch = len(data.x_train) // batch
    for t in range(steps):
        if t % per_epoch == 0:
            perm = order.indices(t // per_epoch, data.y_train, seed)
        idx = perm[(t % per_epoch) * batch:(t % per_epoch + 1) * batch]
        loss = F.cross_entropy(net(data.x_train[idx]), data.y_train[idx])
        o.zero_grad()
        loss.backward()
        o.step()
    return {n: p.detach() for n, p in net.named_parameters()}


def test_every_member_is_its_separate_run():
    data = toy()
    arms = [Arm("a", SPEC, {"name": "sgd", "lr": 0.1}),
            Arm("b", SPEC, {"name": "sgd", "lr": 0.03}, data="shifted", order=Sorted()),   # same block, other lr
            Arm("c", SPEC, {"name": "momentum", "lr": 0.05}),
            Arm("d", {**SPEC, "activation": "tanh"}, {"name": "sgd", "lr": 0.2})]           # another group
    _, states = train_arms(arms, [0, 1], data, steps=25, batch_size=16, device="cpu", keep_states=True)
    for arm in arms:
        for s in (0, 1):
            ref = alone(arm.model, {**arm.optimizer, "momentum": 0.9 if arm.optimizer["name"] == "momentum" else 0},
                        data[arm.data], s, 25, 16, arm.order)
            for name, p in ref.items():
                torch.testing.assert_close(states[(arm.name, s)][name], p, atol=2e-5, rtol=1e-4)


def test_history_columns_targets_and_early_stop():
    data = toy()
    arms = [Arm("fast", SPEC, {"name": "adam", "lr": 0.05}, labels={"kind": "x"}),
            Arm("slow", SPEC, {"name": "adam", "lr": 1e-4}, order=LossProportional(0.5), seeds=(0, 1, 2))]
    h = train_arms(arms, [0, 1], data, steps=60, batch_size=20, eval_every=5, test_every=20, device="cpu")
    assert set(h.arm) == {"fast", "slow"} and h[h.arm == "slow"].seed.nunique() == 3
    assert {"train_loss", "train_acc", "test_loss", "test_acc", "lr", "step", "kind"} <= set(h.columns)
    assert h[h.step == 5].test_acc.isna().all() and h[h.step == 20].test_acc.notna().all()
    first = h[h.step == 5].train_loss.min()
    stop = train_arms(arms[:1], [0], data, steps=500, batch_size=20, eval_every=5, target=("train_loss", first + 0.5),
                      stop_at_target=True, device="cpu")
    assert stop.step.max() < 500 and stop.test_acc.notna().iloc[-1]


def test_augmented_members_differ_and_are_deterministic():
    data = toy()
    arms = [Arm("plain", SPEC, {"name": "sgd", "lr": 0.1}), Arm("aug", SPEC, {"name": "sgd", "lr": 0.1},
                                                               augment=Augment(iid_noise=0.5))]
    a = train_arms(arms, [0], data, steps=20, batch_size=20, device="cpu")
    b = train_arms(arms, [0], data, steps=20, batch_size=20, device="cpu")
    pd.testing.assert_frame_equal(a, b)
    assert a.train_loss.iloc[0] != a.train_loss.iloc[1]


def test_bad_arms_are_refused_before_training():
    data = toy()
    with pytest.raises(ValueError, match="valid: default, shifted"):
        train_arms([Arm("x", SPEC, {"name": "sgd", "lr": 0.1}, data="noisy")], [0], data, steps=1, batch_size=4)
    with pytest.raises(ValueError, match="not elementwise"):
        train_arms([Arm("x", SPEC, {"name": "lars", "lr": 0.1})], [0], data, steps=1, batch_size=4)
    with pytest.raises(ValueError, match="batch_size"):
        train_arms([Arm("x", SPEC, {"name": "sgd", "lr": 0.1})], [0], data, steps=1, batch_size=1000)
    with pytest.raises(ValueError, match="unknown metric"):
        train_arms([Arm("x", SPEC, {"name": "sgd", "lr": 0.1})], [0], data, steps=1, batch_size=4,
                   target=("val_loss", 1.0))


def test_steps_to_target_interpolates_and_censors():
    h = pd.DataFrame({"arm": ["a"] * 3 + ["b"] * 3, "seed": 0, "step": [10, 20, 30] * 2,
                      "train_loss": [2.0, 1.5, 0.5, 2.0, 1.8, 1.6]})
    s = steps_to_target(h, 1.0).set_index("arm")
    assert s.loc["a", "steps"] == pytest.approx(25.0) and s.loc["a", "reached"]
    assert s.loc["b", "steps"] == 31 and not s.loc["b", "reached"]
    assert steps_to_target(h, 1.0, interpolate=False).set_index("arm").loc["a", "steps"] == 30
    acc = h.assign(train_acc=[0.1, 0.8, 0.9, 0.1, 0.2, 0.3])
    assert steps_to_target(acc, 0.75, "train_acc").set_index("arm").loc["a", "steps"] == pytest.approx(10 + 10 * 0.65 / 0.7)


def test_speed_score_orders_by_steps_then_loss():
    assert speed_score(100, 0.5, 1000) > speed_score(101, 0.1, 1000)
    assert speed_score(100, 0.1, 1000) > speed_score(100, 0.5, 1000)
    assert speed_score(5000, 0.1, 1000) == speed_score(1001, 0.1, 1000)
    assert np.isnan(speed_score(100, float("nan"), 1000))


def test_tuning_extends_until_the_optimum_is_interior():
    best_lr = {"a": 3.0, "b": 1e-3}

    def run(arms):   # a score peaked at each arm's own best rate
        return [-abs(np.log10(a.optimizer["lr"]) - np.log10(best_lr[a.name])) for a in arms]

    arms = [Arm(n, SPEC, {"name": "sgd", "lr": 1.0}) for n in best_lr]
    trials = tune_arms(run, arms, centres={"a": 0.1, "b": 0.1}, n=3, max_rounds=6)
    best = best_rates(trials).set_index("arm")
    assert best.interior.all()
    assert best.loc["a", "lr"] == pytest.approx(10 ** 0.5) and best.loc["b", "lr"] == pytest.approx(1e-3)
    assert trials.groupby("arm").lr.apply(lambda s: np.allclose(np.diff(np.log10(np.sort(s))), 0.5)).all()
    with pytest.raises(ValueError, match="no learning-rate centre"):
        tune_arms(run, arms, centres={"a": 0.1})


def test_tuned_speed_keeps_the_tuning_seed_out_of_the_finals():
    data = toy()
    arm = Arm("a", SPEC, {"name": "sgd", "lr": 0.1})
    with pytest.raises(ValueError, match="tuning seed"):
        tuned_speed([arm], data, [0, 1], tune_seed=1, target=("train_loss", 1.0), max_steps=10, batch_size=10,
                    centres={"a": 0.1})
    out = tuned_speed([arm], data, [0, 1, 2], tune_seed=9, target=("train_loss", 0.9), max_steps=60,
                      batch_size=20, centres={"a": 0.3}, n=3, max_rounds=2, eval_every=5)
    assert set(out) == {"trials", "best", "history", "steps"} and set(out["steps"].seed) == {0, 1, 2}


def test_same_sign_rows_sigmoid_vs_tanh():
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    spec = {"name": "mlp", "in_features": 6, "hidden": [12, 12], "out_features": 3}
    torch.manual_seed(0)
    sig = same_sign(build_model({**spec, "activation": "sigmoid"}), x, y, "4.weight")
    torch.manual_seed(0)
    tanh = same_sign(build_model({**spec, "activation": "tanh"}), x, y, "4.weight")
    assert sig["per_sample"] == 1.0 and tanh["per_sample"] < 0.05     # δ_j · h with h > 0: one sign
    assert sig["batch_agreement"] > tanh["batch_agreement"]
    assert second_weight(build_model(spec)) == "4.weight"
    with pytest.raises(ValueError, match="valid: 1.weight, 4.weight, 7.weight"):
        same_sign(build_model(spec), x, y, "4.bias")
    t = same_sign_table({"s": {**spec, "activation": "sigmoid"}}, x, y, "4.weight", [0, 1])
    assert list(t.when) == ["initialization"] * 2


def test_plateau_and_log_slope():
    h = pd.DataFrame({"arm": "a", "seed": 0, "step": range(1, 9), "test_acc": [0.1, 0.2, 0.3, 0.4, 0.5, 0.5, 0.6, 0.6]})
    assert plateau(h, window=0.25)["a"] == pytest.approx(0.6 - 0.5)
    t = pd.DataFrame({"seed": [0, 0, 0], "width": [1, 10, 100], "loss": [1.0, 0.1, 0.01]})
    assert log_slope(t, "width", "loss")[0] == pytest.approx(-1.0)
