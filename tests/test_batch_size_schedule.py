import numpy as np
import pytest

from accel.callbacks.batch_size import BatchSizeSchedule, batch_size_at
from accel.data.datamodule import TensorDataModule
from accel.module import Classifier
from accel.training import fit


def test_batch_size_at_is_the_multistep_twin():
    sizes = [batch_size_at(e, 16, [2, 4], 4) for e in range(6)]
    assert sizes == [16, 16, 64, 64, 256, 256]


def _data(n=96):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    return TensorDataModule(x, y, x[:16], y[:16], batch_size=8, seed=0)


def _module():
    spec = {"name": "mlp", "in_features": 4, "hidden": [8], "out_features": 2}
    return Classifier(spec, {"name": "sgd", "lr": 0.1})


def test_grows_batch_and_counts_updates():
    dm = _data()
    cb = BatchSizeSchedule(milestones=[1, 2], factor=2)
    fit(_module(), dm, 3, seed=0, callbacks=[cb], reload_dataloaders_every_n_epochs=1)
    table = cb.frame()
    assert table["batch_size"].tolist() == [8, 16, 32]
    assert table["updates"].tolist() == [96 // 8, 96 // 16, 96 // 32]
    assert cb.updates == 12 + 6 + 3
    assert dm.batch_size == 8  # restored for the next run


def test_reloaded_loader_keeps_shuffling_across_epochs():
    dm = _data()
    first = dm.train_dataloader()
    orders = [next(iter(first))[1] for _ in range(2)]  # epochs 0 and 1 of one loader

    class FakeTrainer:
        current_epoch, global_rank, world_size = 1, 0, 1
    dm.trainer = FakeTrainer()
    rebuilt = next(iter(dm.train_dataloader()))[1]
    assert (rebuilt == orders[1]).all()


def test_needs_reload_every_epoch():
    with pytest.raises(ValueError, match="reload_dataloaders_every_n_epochs=1"):
        fit(_module(), _data(), 1, seed=0, callbacks=[BatchSizeSchedule([1])])


@pytest.mark.parametrize("kw,match", [(dict(milestones=[3, 2]), "increasing"), (dict(milestones=[0]), "increasing"),
                                      (dict(milestones=[1], factor=0), "factor")])
def test_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        BatchSizeSchedule(**kw)
