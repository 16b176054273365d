import numpy as np

from accel.data.datamodule import TensorDataModule
from accel.experiments.batch_growth import DECAY, GROW, decay_or_grow


def test_decay_or_grow_trains_both_arms_and_counts_updates():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    dm = TensorDataModule(x, y, x[:16], y[:16], batch_size=8, seed=0)
    spec = {"name": "mlp", "in_features": 4, "hidden": [8], "out_features": 2}
    decay = {"name": "multistep", "milestones_epochs": [1, 2], "gamma": 0.5, "steps_per_epoch": 12}
    runs, hist = decay_or_grow(spec, {"name": "sgd", "lr": 0.1}, dm, 3, [3], milestones=[1, 2], factor=2,
                               decay_schedule=decay)
    by_arm = runs.set_index("arm")
    assert list(runs["arm"]) == [DECAY, GROW] and set(runs["seed"]) == {3}
    assert by_arm.loc[DECAY, "updates"] == 36 and by_arm.loc[DECAY, "final batch"] == 8
    assert by_arm.loc[GROW, "updates"] == 12 + 6 + 3 and by_arm.loc[GROW, "final batch"] == 32
    assert dm.batch_size == 8  # restored for the next run
    assert len(hist) == 6 and set(hist["arm"]) == {DECAY, GROW}
    assert hist[hist.arm == GROW]["step"].tolist() == [12, 18, 21]
