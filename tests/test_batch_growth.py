import numpy as np
import pytest

from accel.data.datamodule import TensorDataModule
from accel.experiments.batch_growth import CONSTANT, DECAY, GROW, decay_or_grow


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    return TensorDataModule(x, y, x[:16], y[:16], batch_size=8, seed=0)


SPEC = {"name": "mlp", "in_features": 4, "hidden": [8], "out_features": 2}
DECAY_LR = {"name": "multistep", "milestones_epochs": [1, 2], "gamma": 0.5, "steps_per_epoch": 12}


def test_decay_or_grow_trains_the_arms_and_counts_updates():
    dm = _data()
    out = decay_or_grow(SPEC, {"name": "sgd", "lr": 0.1}, dm, 3, [3], milestones=[1, 2], factor=2,
                        decay_schedule=DECAY_LR, arms=(CONSTANT, DECAY, GROW), every=1)
    by_arm = out.runs.set_index("arm")
    assert list(out.runs["arm"]) == [CONSTANT, DECAY, GROW] and set(out.runs["seed"]) == {3}
    assert by_arm.loc[DECAY, "updates"] == 36 and by_arm.loc[DECAY, "final batch"] == 8
    assert by_arm.loc[CONSTANT, "updates"] == 36 and by_arm.loc[CONSTANT, "final batch"] == 8
    assert by_arm.loc[GROW, "updates"] == 12 + 6 + 3 and by_arm.loc[GROW, "final batch"] == 32
    assert dm.batch_size == 8  # restored for the next run
    assert len(out.history) == 9 and out.history[out.history.arm == GROW]["step"].tolist() == [12, 18, 21]
    # the rates each arm used: the decay halves at updates 12 and 24, the others keep 0.1
    lr = out.steps.set_index(["arm", "step"])["lr"]
    assert lr[(DECAY, 11)] == pytest.approx(0.1) and lr[(DECAY, 12)] == pytest.approx(0.05)
    assert lr[(DECAY, 24)] == pytest.approx(0.025) and lr[(CONSTANT, 35)] == pytest.approx(0.1)
    assert lr[(GROW, 20)] == pytest.approx(0.1) and len(out.steps[out.steps.arm == GROW]) == 21
    # arms of one seed are the same run until their schedules differ
    first = out.history[out.history.epoch == 1].set_index("arm")["train_loss"]
    assert first[CONSTANT] == first[DECAY] == first[GROW]


def test_decay_or_grow_refuses_unknown_arms():
    with pytest.raises(ValueError, match="valid"):
        decay_or_grow(SPEC, {"name": "sgd", "lr": 0.1}, _data(), 1, [0], milestones=[1], factor=2,
                      decay_schedule=DECAY_LR, arms=("decay",))
