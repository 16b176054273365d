import numpy as np
import pytest
import torch
from torch import nn

from accel.callbacks.step_size import StepSizeMonitor, step_sizes
from accel.data import TensorDataModule
from accel.module import Classifier
from accel.experiments.surfaces import linear
from accel.experiments.trajectory import minimize
from accel.training import fit


def test_step_sizes_exact_values():
    before = torch.tensor([1.0, 2.0, 3.0])
    after = torch.tensor([0.9, 2.0, 2.0])
    grad = torch.tensor([1.0, 0.0, 2.0])
    out = step_sizes(before, after, grad, lr=0.1)
    assert out["delta"] == pytest.approx((0.1 + 0 + 1.0) / 3)
    assert out["ratio"] == pytest.approx(np.median([1.0, 5.0]))   # |g| = 0 is left out
    with pytest.raises(ValueError, match="lr must be positive"):
        step_sizes(before, after, grad, lr=0.0)


def test_adagrad_ratio_is_one_over_root_sum_of_squares():
    # AdaGrad (Duchi et al. 2011): Δθ = lr g / (√Σg² + ε); with |g| = 2 each step, ratio = 1/(2√t)
    ratios = []
    minimize(lambda p, t: linear([2.0, -2.0])(p), [0.0, 0.0], {"name": "adagrad", "lr": 0.1, "eps": 1e-12}, 16,
             on_step=lambda t, loss, b, g, a, opt: ratios.append(step_sizes(b, a, g, 0.1)["ratio"]))
    assert ratios == pytest.approx([1 / (2 * np.sqrt(t)) for t in range(1, 17)], rel=1e-9)


def test_callback_records_every_parameter_each_step():
    torch.manual_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    dm = TensorDataModule(x, y, x, y, batch_size=16)
    net = nn.Sequential(nn.Linear(5, 3), nn.ReLU(), nn.Linear(3, 2))
    monitor = StepSizeMonitor()
    fit(Classifier(net, {"name": "sgd", "lr": 0.5}), dm, 2, callbacks=[monitor])
    df = monitor.frame()
    assert len(df) == 8 * 4 and sorted(df.step.unique()) == list(range(8))
    assert set(df.param) == {"net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias"}
    # plain SGD: |Δθ| = lr |g| element-wise, so the ratio is 1
    assert np.allclose(df.ratio, 1.0, rtol=1e-5) and (df.lr == 0.5).all()


def test_callback_validates_arguments():
    with pytest.raises(ValueError, match="every"):
        StepSizeMonitor(every=0)
    monitor = StepSizeMonitor(params=["nope"])
    with pytest.raises(ValueError, match="unknown parameters.*valid: 0.weight"):
        monitor._selected(nn.Sequential(nn.Linear(2, 2)))
