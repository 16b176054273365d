"""accel.training: seeds kept with their modules and callbacks, trainer options, the quiet Trainer."""
import pandas as pd
import pytest
import torch

from accel.callbacks import StepHistory
from accel.data import TensorDataModule
from accel.module import Classifier
from accel.seeding import seed_everything
from accel.training import QuietProfiler, fit, make_trainer, run_seeds, train_seeds

SPEC = {"name": "mlp", "in_features": 6, "hidden": [8], "out_features": 2}


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 6, generator=g)
    y = (x[:, 0] > 0).long()
    return TensorDataModule(x[:64].numpy(), y[:64].numpy(), x[64:].numpy(), y[64:].numpy(), 16)


def test_run_seeds_keeps_each_seeds_module_and_callbacks_and_matches_train_seeds():
    build = lambda: Classifier(SPEC, {"name": "sgd", "lr": 0.1})  # noqa: E731
    runs = run_seeds(build, _data(), 2, [5, 6], callbacks=lambda: [StepHistory()], width=8)
    frame = train_seeds(build, _data(), 2, [5, 6], width=8)
    assert isinstance(frame, pd.DataFrame) and frame.equals(runs.history)
    assert set(runs.modules) == set(runs.callbacks) == set(runs.nets) == {5, 6}
    assert all(len(cb[0].frame()) == 8 for cb in runs.callbacks.values())  # 4 steps × 2 epochs each
    # the kept module is the one trained with that seed: same weights as a separate fit
    seed_everything(6)
    alone = build()
    datamodule = _data()
    datamodule.seed = 6
    fit(alone, datamodule, 2)
    for p, q in zip(alone.parameters(), runs.modules[6].parameters()):
        assert torch.equal(p, q)


def test_trainer_options_reach_every_trainer():
    build = lambda: Classifier(SPEC, {"name": "sgd", "lr": 0.1})  # noqa: E731
    frame = train_seeds(build, _data(), 3, [0], trainer_options={"max_steps": 5, "limit_val_batches": 0})
    assert list(frame["step"]) == [4, 5] and "val_loss" not in frame


def test_the_trainer_profiles_nothing_unless_asked_and_rejects_bad_epochs():
    assert isinstance(make_trainer(1).profiler, QuietProfiler)
    assert type(make_trainer(1, profiler="simple").profiler).__name__ == "SimpleProfiler"
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        train_seeds(lambda: None, _data(), 0, [0])
