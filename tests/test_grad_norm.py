"""Gradient-norm monitor: exact norms, pre-clipping reads, and whether clipping acted."""
import math

import pytest
import torch
from torch import nn

from accel.callbacks.agc import AdaptiveGradientClipping
from accel.callbacks.grad_norm import GradNormMonitor, layer_grad_norms, total_grad_norm
from accel.data import TensorDataModule
from accel.module import Classifier
from accel.seeding import seed_everything
from accel.training import fit


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 6, generator=g)
    y = (x[:, 0] > 0).long()
    return TensorDataModule(x[:192].numpy(), y[:192].numpy(), x[192:].numpy(), y[192:].numpy(), 32)


def _module():
    seed_everything(0)
    return Classifier({"name": "mlp", "in_features": 6, "hidden": [16, 16], "out_features": 2},
                      {"name": "sgd", "lr": 0.1})


def test_total_norm_is_the_norm_of_all_gradients_as_one_vector():
    a, b = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(2, 2))
    a.grad = torch.tensor([3.0, 0.0])
    b.grad = torch.tensor([[0.0, 4.0], [0.0, 12.0]])
    assert total_grad_norm([a, b, nn.Parameter(torch.zeros(1))]) == pytest.approx(13.0)  # √(9+16+144)
    assert total_grad_norm([]) == 0.0


def test_layer_norms_in_order_with_exact_values():
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.ReLU(), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        net[2].weight.copy_(torch.tensor([[2.0, 3.0]]))
    net(torch.tensor([[1.0, 2.0]])).sum().backward()
    # y = 2·relu(x1) + 3·relu(x2): dy/dW2 = [1, 2]; dy/dW1 = [[2·1, 2·2], [3·1, 3·2]]
    table = layer_grad_norms(net)
    assert list(table["layer"]) == [1, 2] and list(table["name"]) == ["0", "2"]
    assert table["grad_norm"].tolist() == pytest.approx([math.sqrt(4 + 16 + 9 + 36), math.sqrt(5)])
    assert table["weight_norm"].tolist() == pytest.approx([math.sqrt(2), math.sqrt(13)])


def test_without_clipping_nothing_is_clipped_and_layers_every_n_steps():
    mon = GradNormMonitor(every=4)
    fit(_module(), _data(), 2, callbacks=[mon])
    steps = mon.steps
    assert list(steps["step"]) == list(range(12))
    assert (steps["norm_after"] == steps["norm_before"]).all()
    assert mon.clipped_fraction() == 0.0
    assert sorted(mon.layers["step"].unique()) == [0, 4, 8]
    assert list(mon.layers.query("step == 0")["layer"]) == [1, 2, 3]


def test_lightning_norm_clipping_is_seen_as_clipping():
    """on_before_optimizer_step reads gradients before Lightning clips them (Lightning 2.x)."""
    mon = GradNormMonitor(every=100)
    fit(_module(), _data(), 2, callbacks=[mon], gradient_clip_val=1e-3, gradient_clip_algorithm="norm")
    steps = mon.steps
    assert (steps["norm_before"] > 1e-3).all()
    assert steps["norm_after"].tolist() == pytest.approx([1e-3] * len(steps), rel=1e-4)
    assert mon.clipped_fraction() == 1.0


def test_a_loose_threshold_clips_only_large_steps():
    mon = GradNormMonitor(every=100)
    fit(_module(), _data(), 2, callbacks=[mon])
    threshold = float(mon.steps["norm_before"].median())
    mon2 = GradNormMonitor(every=100)
    fit(_module(), _data(), 2, callbacks=[mon2], gradient_clip_val=threshold)
    s = mon2.steps
    assert (s["clipped"] == (s["norm_before"] > threshold)).all()
    assert 0 < mon2.clipped_fraction() < 1


def test_agc_after_the_monitor_is_seen_as_clipping():
    mon, agc = GradNormMonitor(every=100), AdaptiveGradientClipping(clipping=1e-4)
    fit(_module(), _data(), 1, callbacks=[mon, agc])
    assert mon.clipped_fraction() == 1.0 and agc.clipped_fraction() == 1.0


def test_bad_every():
    with pytest.raises(ValueError, match="every"):
        GradNormMonitor(every=0)
