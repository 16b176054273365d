"""The chapter's warm-start bookkeeping: rises above the checkpoint, recovery, per-batch excess."""
import numpy as np
import pandas as pd
import pytest

from accel import TensorDataModule
from accel.experiments.warm_start import base_runs, batch_excess, continuation_arms, resume_arms, rise_table


def test_rise_and_recovery_with_censoring():
    reference = pd.DataFrame({"seed": [0, 0], "epoch": [1, 2], "train_loss": [1.0, 0.5]})
    history = pd.DataFrame({"arm": ["a"] * 3 + ["b"] * 3, "seed": 0, "epoch": [3, 4, 5] * 2,
                            "train_loss": [0.9, 0.6, 0.4, 0.45, 0.4, 0.3]})
    out = rise_table(history, reference, 2).set_index("arm")
    assert out.loc["a", "rise"] == pytest.approx(0.4) and out.loc["a", "recover"] == 3
    assert not out.loc["a", "censored"]
    assert out.loc["b", "rise"] == pytest.approx(-0.05) and out.loc["b", "recover"] == 1
    stuck = rise_table(history.assign(train_loss=2.0), reference, 2)
    assert stuck.censored.all() and (stuck.recover == 3).all()
    with pytest.raises(ValueError, match="no reference value"):
        rise_table(history.assign(seed=7), reference, 2)


def test_batch_excess_compares_the_same_updates():
    ref = pd.DataFrame({"seed": 0, "step": range(6), "loss": [1.0] * 6})
    steps = pd.DataFrame({"arm": "x", "seed": 0, "step": [2, 3, 4], "loss": [1.5, 1.25, 1.0]})
    out = batch_excess(steps, ref, 2, 3).iloc[0]
    assert out.mean_excess == pytest.approx(0.25) and out.max_excess == pytest.approx(0.5)
    with pytest.raises(ValueError, match="not all logged"):
        batch_excess(steps, ref, 2, 4)


def test_the_protocol_end_to_end(tmp_path):
    g = np.random.default_rng(0)
    x = g.standard_normal((60, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    data = TensorDataModule(x, y, x[:20], y[:20], batch_size=20)
    spec = dict(model=dict(name="mlp", in_features=4, hidden=[8], out_features=2),
                optimizer={"name": "adam", "lr": 1e-2}, schedule={"name": "cosine", "warmup_steps": 2})
    base = base_runs(spec, data, 4, [0, 1], tmp_path, every_n_epochs=2)
    assert sorted(base.files[0]) == [2, 4] and set(base.history.seed) == {0, 1}
    hist, steps, diff = resume_arms(spec, data, 4, base, 2, exact_seeds=[0], keep_optimizer=True)
    assert set(hist.arm) == {"whole state", "weights only", "weights + optimizer state"}
    assert diff == {0: 0.0}
    whole = hist.query("arm == 'whole state'").train_loss.tolist()
    assert whole == base.history.query("seed == 0 and epoch > 2").train_loss.tolist()
    assert set(hist.query("arm == 'weights only'").epoch) == {3, 4}
    assert steps.query("arm == 'weights only'").step.min() == 2 * 3
    # the weights-only arm sees the uninterrupted run's batches: same first batch, same weights, same loss?
    # no: the same weights but a different optimizer state, so only the first loss agrees.
    first = steps.query("arm == 'weights only' and seed == 0").sort_values("step").loss.iloc[0]
    assert first == pytest.approx(base.steps.query("seed == 0 and step == 6").loss.iloc[0])
    ch, cs = continuation_arms(spec, data, base, 4, 1, {"same": (1e-2, None), "low": (1e-4, None)})
    assert set(ch.arm) == {"same", "low"} and set(ch.epoch) == {5}
    with pytest.raises(ValueError, match="need 1 <= at < epochs"):
        resume_arms(spec, data, 4, base, 4)
