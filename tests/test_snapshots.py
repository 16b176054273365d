import numpy as np
import pytest
import torch

from accel.data.datamodule import TensorDataModule
from accel.experiments.snapshots import (ensemble_accuracy, last_m_ensembles, restart_updates, snapshot_paths,
                                         train_snapshots)
from accel.module import Classifier


def test_ensemble_of_snapshots_averages_probabilities():
    y = torch.tensor([0, 1, 0])
    # each snapshot alone gets 2 of 3 right; their mean gets all three (a wrong vote is a weak one)
    p1 = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.8, 0.2]])
    p2 = torch.tensor([[0.4, 0.6], [0.1, 0.9], [0.7, 0.3]])
    assert ensemble_accuracy([p1], y) == pytest.approx(2 / 3)
    assert ensemble_accuracy([p1, p2], y) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        ensemble_accuracy([], y)


def test_last_m_ensembles_take_the_last_snapshots():
    y = torch.tensor([0, 1, 0])
    bad = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])  # wrong everywhere, and confident
    p1 = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.8, 0.2]])
    p2 = torch.tensor([[0.4, 0.6], [0.1, 0.9], [0.7, 0.3]])
    rows = last_m_ensembles([bad, p1, p2], y)
    assert [r["last"] for r in rows] == [1, 2, 3]
    assert rows[0]["ensemble accuracy"] == pytest.approx(2 / 3)  # p2 alone
    assert rows[1]["ensemble accuracy"] == pytest.approx(1.0)    # p1 and p2, not the early snapshot
    assert rows[2]["ensemble accuracy"] < 1.0                     # the early snapshot drags the mean
    with pytest.raises(ValueError):
        last_m_ensembles([], y)


def test_snapshot_paths_sort_by_epoch_number(tmp_path):
    for e in (10, 2, 9):
        (tmp_path / f"epoch={e}.ckpt").write_bytes(b"")
    assert [p.name for p in snapshot_paths(tmp_path)] == ["epoch=2.ckpt", "epoch=9.ckpt", "epoch=10.ckpt"]


def test_restart_updates_are_the_first_update_of_each_later_cycle():
    assert restart_updates(4, 3, 10) == [30, 60, 90]
    assert restart_updates(1, 3, 10) == []


def test_train_snapshots_scores_one_snapshot_per_cycle():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    dm = TensorDataModule(x, y, x[:32], y[:32], batch_size=16, seed=0)
    spec = {"name": "mlp", "in_features": 4, "hidden": [8], "out_features": 2}
    sgdr = {"name": "sgdr", "T_0_epochs": 1, "steps_per_epoch": 4}
    runs = train_snapshots(lambda: Classifier(spec, {"name": "sgd", "lr": 0.1}, sgdr), dm, 3, 1, [5], step_every=2)
    assert list(runs.snapshots["snapshot"]) == [1, 2, 3] and list(runs.snapshots["epoch"]) == [1, 2, 3]
    assert list(runs.ensembles["last"]) == [1, 2, 3] and set(runs.ensembles["seed"]) == {5}
    # the last snapshot is the trained network: alone it scores the history's final test accuracy
    last = runs.ensembles[runs.ensembles["last"] == 1]["ensemble accuracy"].item()
    assert last == pytest.approx(runs.history["val_acc"].iloc[-1])
    assert last == pytest.approx(runs.snapshots["test accuracy"].iloc[-1])
    assert list(runs.history["epoch"]) == [1, 2, 3]
    assert list(runs.steps["step"]) == [0, 2, 4, 6, 8, 10]
    assert runs.steps["lr"].iloc[2] == pytest.approx(0.1)  # update 4 starts the second cycle at the top rate
    assert dm.seed == 5
