import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from accel.data import TensorDataModule
from accel.experiments import init_comparison
from accel.experiments.init_comparison import (converged, epochs_for, init_runs, paired, scale_pixels,
                                               sources_mlp)
from accel.models.init import expected_variance


def test_scale_pixels_three_ways():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(200, 12)).astype(np.float32)
    x[:, 0] = 0.0
    x[3, 0] = 255.0  # a "border pixel": non-zero in one training image only
    xt = rng.integers(0, 256, size=(50, 12)).astype(np.float32)
    xt[:, 0] = 255.0
    unit, unit_t = scale_pixels(x, xt, "unit")
    assert unit.max() <= 1.0 and unit.min() >= 0.0 and unit_t.max() == pytest.approx(1.0)
    np.testing.assert_allclose(unit * 255, x, rtol=1e-6)
    raw, raw_t = scale_pixels(x, xt, "raw")
    np.testing.assert_array_equal(raw, x)
    raw[0, 0] = -1.0
    assert x[0, 0] == 0.0  # a copy: the cached arrays cannot be changed through it
    std, std_t = scale_pixels(x, xt, "standardized")
    assert np.abs(std.mean(0)).max() < 1e-4
    assert np.abs(std_t).max() < 100  # the near-constant pixel is not divided by ~0
    with pytest.raises(ValueError, match="valid: unit, raw, standardized"):
        scale_pixels(x, xt, "minmax")


def test_sources_mlp_keeps_default_biases():
    torch.manual_seed(0)
    net = sources_mlp("he_normal", in_features=784)
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 1024), (1024, 64), (64, 10)]
    assert any(isinstance(m, nn.ReLU) for m in net.modules())
    for m in linears:
        # weights: He's variance 2/fan_in; biases: PyTorch's U(±1/√fan_in), not zeros
        assert m.weight.var().item() == pytest.approx(expected_variance("he_normal", m.in_features, 0), rel=0.15)
        bound = 1 / m.in_features ** 0.5
        assert m.bias.abs().max().item() <= bound and m.bias.abs().max().item() > 0.5 * bound
    xavier = [m for m in sources_mlp("xavier_uniform").modules() if isinstance(m, nn.Linear)][0]
    assert xavier.weight.abs().max().item() <= (6 / (784 + 1024)) ** 0.5
    default = [m for m in sources_mlp("default").modules() if isinstance(m, nn.Linear)][0]
    assert default.weight.var().item() == pytest.approx(1 / (3 * 784), rel=0.05)
    with pytest.raises(ValueError, match="unknown init"):
        sources_mlp("glorot")


def test_epochs_for_the_sources_first_epoch():
    assert epochs_for(60_000, 4000) == 15
    assert epochs_for(60_000, 512) == 118
    assert epochs_for(10, 10) == 1
    with pytest.raises(ValueError):
        epochs_for(0, 10)


def _tiny_pixels(monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(96, 784)).astype(np.float32)
    y = rng.integers(0, 10, size=96)
    y[:10] = np.arange(10)
    arrays = (x[:64], y[:64], x[64:], y[64:])
    monkeypatch.setattr(init_comparison, "_arrays", lambda dataset: arrays)


def test_init_runs_are_paired_and_labelled(monkeypatch):
    _tiny_pixels(monkeypatch)
    runs = init_runs("unit", ["default", "he_uniform"], 2, [0, 1, 2], train_size=48, batch_size=16)
    assert set(runs.columns) >= {"epoch", "train_loss", "train_acc", "val_acc", "seed", "init", "scaling", "images"}
    assert len(runs) == 2 * 3 * 2 and (runs.scaling == "unit").all()
    assert sorted(runs.images.unique()) == [48, 96]
    table = paired(runs, 2, "train_loss", scaling="unit", log=True)
    assert list(table.index) == [0, 1, 2] and list(table.columns) == ["default", "he_uniform"]
    raw = paired(runs, 2, "train_loss", scaling="unit")
    np.testing.assert_allclose(table.to_numpy(), np.log(raw.to_numpy()))
    again = init_runs("unit", ["he_uniform"], 2, [1], train_size=48, batch_size=16)
    assert again.train_loss.tolist() == runs[(runs.init == "he_uniform") & (runs.seed == 1)].train_loss.tolist()
    with pytest.raises(ValueError, match="epochs run"):
        paired(runs, 5, "train_loss", scaling="unit")


def test_converged_needs_every_run_to_fit_its_training_set():
    runs = pd.DataFrame({"scaling": "unit", "init": ["a", "a", "b", "b"], "seed": 0, "epoch": [1, 2, 1, 2],
                         "train_acc": [0.5, 1.0, 0.999, 0.99]})
    assert not converged(runs)
    assert converged(runs, min_train_acc=0.99)
    assert converged(runs[runs.init == "a"])
    with pytest.raises(ValueError):
        converged(runs.iloc[:0])


def test_mnist_scaled_slices_and_scales(monkeypatch):
    _tiny_pixels(monkeypatch)
    dm = init_comparison.mnist_scaled("unit", train_size=32, batch_size=16)
    assert isinstance(dm, TensorDataModule) and dm.x_train.shape == (32, 784) and dm.x_test.shape == (32, 784)
    assert float(dm.x_train.max()) <= 1.0
    with pytest.raises(ValueError, match="train_size"):
        init_comparison.mnist_scaled("unit", train_size=1000)
    with pytest.raises(ValueError, match="unknown scaling"):
        init_comparison.mnist_scaled("zscore")


def test_loss_ratios_pair_by_seed():
    runs = pd.DataFrame({"scaling": "unit", "epoch": 3, "seed": [0, 1, 0, 1, 0, 1],
                         "init": ["default", "default", "he_uniform", "he_uniform", "xavier_uniform",
                                  "xavier_uniform"], "train_loss": [1.0, 2.0, 0.5, 4.0, 1.0, 1.0]})
    ratios = init_comparison.loss_ratios(runs, {"unit": 3})
    got = ratios.set_index(["init", "seed"])["log_ratio"]
    assert got["he_uniform", 0] == pytest.approx(np.log(0.5)) and got["he_uniform", 1] == pytest.approx(np.log(2))
    assert got["xavier_uniform", 1] == pytest.approx(np.log(0.5)) and "default" not in ratios.init.values
    assert (ratios.scaling == "unit").all() and (ratios.epoch == 3).all()
    with pytest.raises(ValueError, match="no 'gauss' runs"):
        init_comparison.loss_ratios(runs, {"unit": 3}, baseline="gauss")


def test_first_layer_std_is_the_variance_argument():
    # default: var(w) = 1/(3·784), so 784·var(w)·E[x²] = E[x²]/3
    assert init_comparison.first_layer_std(3.0, "default") == pytest.approx(1.0)
    assert init_comparison.first_layer_std(1.0, "he_uniform") == pytest.approx(2 ** 0.5)
    # and it is what a forward pass measures, for x of second moment 0.25 (x = ±0.5)
    torch.manual_seed(0)
    x = (torch.randint(0, 2, (4000, 784)).float() - 0.5)
    net = sources_mlp("he_normal")
    first = [m for m in net.modules() if isinstance(m, nn.Linear)][0]
    with torch.no_grad():
        pre = x @ first.weight.T
    assert pre.std().item() == pytest.approx(init_comparison.first_layer_std(0.25, "he_normal"), rel=0.05)
