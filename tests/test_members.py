"""accel.experiments.members: stacked members train exactly as separate runs with torch's optimizers."""
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from accel.experiments.members import decoupled, last, train_members
from accel.models import MLP, CNN1d
from accel.optim import make_optimizer
from accel.schedules import make_schedule
from accel.seeding import seed_everything


def _data(n=96, d=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    return x, (x[:, 0] + 0.5 * x[:, 1] > 0).long()


def _alone(build, x, y, spec, seed, steps, batch, schedule=None):
    """One model, torch's optimizer with its own weight_decay, the members' data order."""
    seed_everything(seed)
    model = build()
    opt = make_optimizer(model, spec)
    sched = make_schedule(opt, schedule, steps) if schedule else None
    gen = torch.Generator().manual_seed(seed)
    per_epoch = len(x) // batch
    for t in range(steps):
        j = t % per_epoch
        if j == 0:
            perm = torch.randperm(len(x), generator=gen)
        idx = perm[j * batch:(j + 1) * batch]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched:
            sched.step()
    with torch.no_grad():
        return F.cross_entropy(model(x), y).item(), model


SPECS = [{"name": "adam", "lr": 1e-2, "weight_decay": 0.1}, {"name": "adamw", "lr": 1e-2, "weight_decay": 0.5},
         {"name": "nesterov", "lr": 0.1, "weight_decay": 1e-2}, {"name": "adagrad", "lr": 0.05},
         {"name": "radam", "lr": 1e-2}, {"name": "nadam", "lr": 1e-2, "weight_decay": 1e-3},
         {"name": "rmsprop", "lr": 1e-3}, {"name": "adam", "lr": 1e-2, "weight_decay": 0.0}]


@pytest.mark.parametrize("schedule", [None, {"name": "cosine"}])
def test_each_member_matches_a_separate_run_with_torchs_weight_decay(schedule):
    x, y = _data()
    build = lambda: MLP(6, [8, 8], 2)
    members = [{"spec": s, "seed": i % 3, "tag": i} for i, s in enumerate(SPECS)]
    hist = train_members(build, (x, y), members, steps=25, batch_size=16, schedule=schedule)
    end = last(hist)
    assert end.tag.tolist() == list(range(len(SPECS))) and end.member.tolist() == list(range(len(SPECS)))
    for k, m in enumerate(members):
        loss, _ = _alone(build, x, y, m["spec"], m["seed"], 25, 16, schedule)
        assert end.train_loss[k] == pytest.approx(loss, rel=1e-5), m["spec"]


def test_a_cnn_member_matches_too_and_evals_are_reported():
    x, y = _data(64, 40)
    build = lambda: CNN1d(1, [4, 4], 2)
    spec = {"name": "adam", "lr": 1e-2, "weight_decay": 1e-2}
    hist = train_members(build, (x, y), [{"spec": spec, "seed": 3}, {"spec": spec, "seed": 4}], steps=12,
                         batch_size=16, evals={"val": (x[:10], y[:10])}, eval_every=4)
    assert sorted(hist.step.unique()) == [4, 8, 12]
    assert {"train_loss", "train_acc", "val_loss", "val_acc"} <= set(hist.columns)
    loss, _ = _alone(build, x, y, spec, 3, 12, 16)
    assert last(hist).train_loss[0] == pytest.approx(loss, rel=1e-5)


def test_same_seed_same_start_and_batches_and_refusals():
    x, y = _data()
    build = lambda: MLP(6, [8], 2)
    spec = {"name": "sgd", "lr": 0.1}
    h = train_members(build, (x, y), [{"spec": spec, "seed": 1}, {"spec": dict(spec), "seed": 1}], steps=5,
                      batch_size=16)
    assert h.train_loss[0] == h.train_loss[1]
    with pytest.raises(ValueError, match="couples"):
        train_members(build, (x, y), [{"spec": {"name": "lamb", "lr": 1e-2}, "seed": 0}], steps=1, batch_size=8)
    with pytest.raises(ValueError, match="spec"):
        train_members(build, (x, y), [{"seed": 0}], steps=1, batch_size=8)
    with pytest.raises(ValueError, match="batch_size"):
        train_members(build, (x, y), [{"spec": spec, "seed": 0}], steps=1, batch_size=1000)
    with pytest.raises(ValueError, match="buffers"):
        train_members(lambda: MLP(6, [8], 2, norm="bn"), (x, y), [{"spec": spec, "seed": 0}], steps=1, batch_size=8)
    with pytest.raises(ValueError, match="dropout"):
        train_members(lambda: MLP(6, [8], 2, dropout=0.5), (x, y), [{"spec": spec, "seed": 0}], steps=1,
                      batch_size=8)
    assert decoupled({"name": "adamw"}) and decoupled({"name": "nadam", "decoupled_weight_decay": True})
    assert not decoupled({"name": "adam"})


def test_a_diverged_member_leaves_the_others_alone():
    x, y = _data()
    build = lambda: MLP(6, [8], 2)
    members = [{"spec": {"name": "sgd", "lr": 1e6}, "seed": 0}, {"spec": {"name": "sgd", "lr": 0.1}, "seed": 0}]
    end = last(train_members(build, (x, y), members, steps=20, batch_size=16))
    assert np.isnan(end.train_acc[0]) or end.train_loss[0] > 10
    loss, _ = _alone(build, x, y, members[1]["spec"], 0, 20, 16)
    assert end.train_loss[1] == pytest.approx(loss, rel=1e-5)

