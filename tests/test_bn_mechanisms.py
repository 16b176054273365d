"""Chapter 10's run helpers: the input-shift monitor, arms over seeds, the converged-check slope."""
import numpy as np
import pandas as pd
import pytest
import torch

from accel import make_datamodule
from accel.experiments.bn_mechanisms import evaluate, loss_slope, train_arms

NET = {"name": "resnet1d", "widths": [4, 8], "blocks": 1, "stem_stride": 2}
OPT = {"name": "momentum", "lr": 0.05}


@pytest.fixture(scope="module")
def data():
    return make_datamodule("mnist1d", 50, standardize=True, train_size=200, seed=0)


def test_input_shift_is_recorded_every_step_and_noise_moves_the_inputs_more(data):
    arms = {"bn": {"model": {**NET, "norm": "bn"}},
            "noisy": {"model": {**NET, "norm": "noisy_bn", "noise_shift": 1.0, "noise_scale": 2.0}}}
    out = train_arms(data, arms, 2, [0, 1, 2], optimizer=OPT, measure_shift=True)
    steps = out.shifts.groupby(["arm", "seed"]).step.apply(list)
    assert all(s == list(range(1, 8)) for s in steps)  # 8 updates; the first has no predecessor
    assert (out.shifts["shift"] >= 0).all()
    mean = out.shifts.groupby("arm")["shift"].mean()
    assert mean["noisy"] > 2 * mean["bn"]


def test_final_rows_measure_the_trained_nets_in_evaluation_mode(data):
    out = train_arms(data, {"bn": {"model": {**NET, "norm": "bn"}},
                            "nf": {"model": {**NET, "norm": "sws"}, "agc": 0.04}}, 1, [0, 1, 2], optimizer=OPT)
    assert set(out.final.columns) >= {"arm", "seed", "train_loss", "train_acc", "test_loss", "test_acc", "gap"}
    row = out.final.query("arm == 'bn' and seed == 1").iloc[0]
    net = out.runs["bn"].nets[1]
    assert (row.test_loss, row.test_acc) == pytest.approx(evaluate(net, data.x_test, data.y_test))
    assert row.gap == pytest.approx(row.train_acc - row.test_acc)
    assert out.runs["nf"].callbacks[0][0].steps == 4  # AGC ran (one seed at a time)
    assert out.shifts.empty


def test_arms_share_initial_weights_where_architectures_agree(data):
    """Same seed, same spec: the stacked-ensemble and one-at-a-time paths train the same nets."""
    spec = {"model": {**NET, "norm": "bn"}}
    a = train_arms(data, {"x": spec}, 1, [0, 1, 2], optimizer=OPT)
    b = train_arms(data, {"x": spec}, 1, [0, 1, 2], optimizer=OPT, measure_shift=True)
    for s in (0, 1, 2):
        for p, q in zip(a.runs["x"].nets[s].parameters(), b.runs["x"].nets[s].parameters()):
            torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


def test_bad_arms_are_refused(data):
    with pytest.raises(ValueError, match="at least one arm"):
        train_arms(data, {}, 1, [0, 1, 2], optimizer=OPT)
    with pytest.raises(ValueError, match="'model' spec"):
        train_arms(data, {"x": {"net": NET}}, 1, [0, 1, 2], optimizer=OPT)


def test_loss_slope_is_the_relative_least_squares_slope_of_the_last_epochs():
    epochs = np.arange(1, 21)
    hist = pd.DataFrame(dict(arm="a", seed=0, epoch=epochs, train_loss=2.0 - 0.05 * epochs))
    slope = loss_slope(hist, fraction=0.25).slope.item()
    tail = 2.0 - 0.05 * epochs[-5:]
    assert slope == pytest.approx(-0.05 / tail.mean())
    flat = hist.assign(train_loss=0.3)
    assert loss_slope(flat).slope.item() == pytest.approx(0.0)
    with pytest.raises(ValueError, match="fraction"):
        loss_slope(hist, fraction=0)
