"""One network at a time, exactly as a stacked member: same weights, same batches, same rows."""
import math

import pytest
import torch

from accel.experiments.members import train_members
from accel.experiments.single_run import lenet1d, spread_per_seed, train_each, train_one, trust_ratios_at_init
from accel.models import MLP


def _data(n=300, d=40, seed=5):
    torch.manual_seed(seed)
    return torch.randn(n, d), torch.randint(0, 10, (n,))


def test_a_single_run_equals_the_stacked_member_with_its_seed():
    x, y = _data()
    build = lambda: MLP(40, [16], 10)   # noqa: E731
    sched = {"name": "cosine", "warmup_steps": 3, "warmup_start_factor": 0.1}
    spec = {"name": "momentum", "lr": 0.3, "weight_decay": 0.01}
    stacked = train_members(build, (x, y), [{"spec": spec, "seed": 3}, {"spec": {**spec, "lr": 0.1}, "seed": 4}],
                            steps=25, batch_size=32, schedule=sched, evals={"v": (x[:50], y[:50])}, eval_every=10)
    one, model = train_one(build, (x, y), spec, steps=25, batch_size=32, seed=3, schedule=sched,
                           evals={"v": (x[:50], y[:50])}, eval_every=10)
    member = stacked[stacked.member == 0].reset_index(drop=True)
    assert one.step.tolist() == member.step.tolist() == [10, 20, 25]
    for col in ("train_loss", "train_acc", "v_loss", "v_acc"):
        assert one[col].tolist() == pytest.approx(member[col].tolist(), rel=1e-5, abs=1e-6)
    assert isinstance(model, torch.nn.Module)


def test_label_smoothing_changes_the_training_loss_only_and_bad_values_are_refused():
    x, y = _data()
    build = lambda: MLP(40, [8], 10)   # noqa: E731
    plain, _ = train_one(build, (x, y), {"name": "sgd", "lr": 0.1}, steps=3, batch_size=30, seed=0)
    smooth, _ = train_one(build, (x, y), {"name": "sgd", "lr": 0.1}, steps=3, batch_size=30, seed=0,
                          label_smoothing=0.1)
    assert plain.train_loss.iloc[-1] != smooth.train_loss.iloc[-1]   # the weights moved differently
    with pytest.raises(ValueError, match="label_smoothing"):
        train_one(build, (x, y), {"name": "sgd", "lr": 0.1}, steps=3, batch_size=30, seed=0, label_smoothing=1.0)
    with pytest.raises(ValueError, match="batch_size"):
        train_one(build, (x, y), {"name": "sgd", "lr": 0.1}, steps=3, batch_size=301, seed=0)


def test_a_diverged_run_stops_and_reports_nan():
    x, y = _data()
    rows, _ = train_one(lambda: MLP(40, [8], 10), (x * 1e3, y), {"name": "sgd", "lr": 1e6}, steps=20,
                        batch_size=30, seed=0, eval_every=5)
    assert math.isnan(rows.train_loss.iloc[-1]) and math.isnan(rows.train_acc.iloc[-1])


def test_train_each_labels_members_and_takes_per_run_options():
    x, y = _data()
    runs = [{"spec": {"name": "sgd", "lr": 0.1}, "seed": 0, "arm": "a"},
            {"spec": {"name": "lamb", "lr": 0.01, "exclude_from_adaptation": True}, "seed": 0, "arm": "b",
             "label_smoothing": 0.1, "schedule": {"name": "cosine"}}]
    h = train_each(lambda: MLP(40, [8], 10), (x, y), runs, steps=4, batch_size=30)
    assert h.member.tolist() == [0, 1] and h.arm.tolist() == ["a", "b"] and h.optimizer.tolist() == ["sgd", "lamb"]


def test_lenet1d_is_the_reference_shape_and_the_disparity_is_max_over_min():
    net = lenet1d()
    assert [tuple(p.shape) for n, p in net.named_parameters() if n.endswith("weight")] == \
        [(20, 1, 5), (50, 20, 5), (500, 350), (10, 500)]
    assert net(torch.randn(3, 40)).shape == (3, 10)
    with pytest.raises(ValueError, match="length"):
        lenet1d(length=10)
    x, y = _data(n=200)
    r = trust_ratios_at_init(lenet1d, (x, y), [0, 1], 64)
    assert set(r.seed) == {0, 1} and len(r) == 8 and (r.ratio > 0).all()
    s = spread_per_seed(r)
    assert s.loc[0] == pytest.approx(r[r.seed == 0].ratio.max() / r[r.seed == 0].ratio.min())
