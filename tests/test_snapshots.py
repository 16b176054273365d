import numpy as np
import pandas as pd
import pytest
import torch

from accel.data.datamodule import TensorDataModule
from accel.experiments.snapshots import ensemble_accuracies, restart_loss_changes, snapshot_paths, train_snapshots
from accel.module import Classifier


def test_ensemble_of_snapshots_averages_probabilities():
    y = torch.tensor([0, 1, 0])
    # each snapshot alone gets 2 of 3 right; their mean gets all three (a wrong vote is a weak one)
    p1 = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.8, 0.2]])
    p2 = torch.tensor([[0.4, 0.6], [0.1, 0.9], [0.7, 0.3]])
    rows = ensemble_accuracies([p1, p2], y)
    assert [r["snapshots"] for r in rows] == [1, 2]
    assert rows[0]["snapshot accuracy"] == pytest.approx(2 / 3) and rows[0]["ensemble accuracy"] == pytest.approx(2 / 3)
    assert rows[1]["snapshot accuracy"] == pytest.approx(2 / 3)
    assert rows[1]["ensemble accuracy"] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        ensemble_accuracies([], y)


def test_snapshot_paths_sort_by_epoch_number(tmp_path):
    for e in (10, 2, 9):
        (tmp_path / f"epoch={e}.ckpt").write_bytes(b"")
    assert [p.name for p in snapshot_paths(tmp_path)] == ["epoch=2.ckpt", "epoch=9.ckpt", "epoch=10.ckpt"]


def test_restart_loss_changes_compare_across_each_restart():
    # 3 cycles of 2 epochs: restarts after epochs 2 and 4
    h = pd.DataFrame({"seed": [0] * 6 + [1] * 6, "epoch": list(range(1, 7)) * 2,
                      "train_loss": [5, 4, 4.5, 3, 2, 1, 5, 4, 3, 2, 2.5, 1]})
    np.testing.assert_allclose(restart_loss_changes(h, 3, 2), [0.5, -1.0, -1.0, 0.5])
    assert restart_loss_changes(h, 1, 6).size == 0


def test_train_snapshots_scores_one_snapshot_per_cycle():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    dm = TensorDataModule(x, y, x[:32], y[:32], batch_size=16, seed=0)
    spec = {"name": "mlp", "in_features": 4, "hidden": [8], "out_features": 2}
    sgdr = {"name": "sgdr", "T_0_epochs": 1, "steps_per_epoch": 4}
    runs = train_snapshots(lambda: Classifier(spec, {"name": "sgd", "lr": 0.1}, sgdr), dm, 3, 1, [5], step_every=2)
    assert list(runs.snapshots["snapshots"]) == [1, 2, 3] and set(runs.snapshots["seed"]) == {5}
    first = runs.snapshots.iloc[0]
    assert first["ensemble accuracy"] == first["snapshot accuracy"]
    # the last snapshot is the trained network: its accuracy is the history's final test accuracy
    assert runs.snapshots["snapshot accuracy"].iloc[-1] == pytest.approx(runs.history["val_acc"].iloc[-1])
    assert list(runs.history["epoch"]) == [1, 2, 3]
    assert list(runs.steps["step"]) == [0, 2, 4, 6, 8, 10]
    assert runs.steps["lr"].iloc[2] == pytest.approx(0.1)  # update 4 starts the second cycle at the top rate
    assert dm.seed == 5
