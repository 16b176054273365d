import numpy as np
import pandas as pd
import pytest

from accel.data.datamodule import TensorDataModule
from accel.experiments.schedule_runs import loss_jumps, tail_change, train_logged, trains_count
from accel.module import Classifier


def test_loss_jumps_compare_the_windows_either_side_of_each_update():
    steps = pd.DataFrame({"seed": [0] * 8, "step": range(8), "loss": [4, 4, 2, 2, 3, 5, 1, 1]})
    out = loss_jumps(steps, [2, 4], window=2)
    np.testing.assert_allclose(out["before"], [4, 2])
    np.testing.assert_allclose(out["after"], [2, 4])
    np.testing.assert_allclose(out["jump"], [-2, 2])
    with pytest.raises(ValueError, match="not all in the log"):
        loss_jumps(steps, [7], window=2)
    with pytest.raises(ValueError):
        loss_jumps(steps, [2], window=0)


def test_tail_change_is_the_relative_change_over_the_last_fraction():
    h = pd.DataFrame({"seed": [0] * 10 + [1] * 10, "epoch": list(range(1, 11)) * 2,
                      "train_loss": [10, 9, 8, 7, 6, 5, 4, 3, 2, 1] + [1.0] * 10})
    out = tail_change(h, fraction=0.2).set_index("seed")
    assert out.loc[0, "early"] == pytest.approx(3.5) and out.loc[0, "late"] == pytest.approx(1.5)
    assert out.loc[0, "change"] == pytest.approx(1.5 / 3.5 - 1)
    assert out.loc[1, "change"] == pytest.approx(0.0)
    with pytest.raises(ValueError):
        tail_change(h, fraction=0.8)


def test_trains_count_counts_rates_below_the_threshold_and_not_diverged_runs():
    final = pd.DataFrame({"method": ["a"] * 3 + ["b"] * 3, "seed": [0] * 6, "lr": [1, 2, 3] * 2,
                          "train_loss": [1.0, 1.5, np.nan, 1.0, 2.0, 2.5]})
    out = trains_count(final, below=1.8).set_index("method")["rates"]
    assert out["a"] == 2 and out["b"] == 1


def test_train_logged_keeps_one_log_per_seed():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    dm = TensorDataModule(x, y, x[:8], y[:8], batch_size=8, seed=0)
    spec = {"name": "mlp", "in_features": 4, "hidden": [4], "out_features": 2}
    history, steps = train_logged(lambda: Classifier(spec, {"name": "sgd", "lr": 0.1}, {"name": "cosine"}),
                                  dm, 2, iter([1, 2]), every=2, arm="x")
    assert sorted(history.seed.unique()) == [1, 2] and set(history.arm) == {"x"}
    assert steps.groupby("seed")["step"].apply(list).to_dict() == {1: [0, 2, 4, 6], 2: [0, 2, 4, 6]}
    assert steps[steps.seed == 1]["lr"].iloc[0] == pytest.approx(0.1)  # cosine starts at the peak
