import math
from types import SimpleNamespace

import pytest
import torch
from pytorch_optimizer import LARS
from torch import nn

from accel.callbacks import TrustRatioMonitor, lars_local_lr, trust_ratio_table


def _net() -> nn.Module:
    net = nn.Sequential(nn.Linear(2, 1), nn.BatchNorm1d(1), nn.Linear(1, 2))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[3.0, 4.0]]))      # ‖w‖ = 5
        net[2].weight.copy_(torch.tensor([[0.6], [0.8]]))    # ‖w‖ = 1
    net[0].weight.grad = torch.tensor([[0.06, 0.08]])        # ‖g‖ = 0.1
    net[2].weight.grad = torch.tensor([[3.0], [4.0]])        # ‖g‖ = 5
    for p in (net[0].bias, net[1].weight, net[1].bias, net[2].bias):
        p.grad = torch.ones_like(p)
    return net


def test_lars_local_lr_is_eq_6():
    assert lars_local_lr(5.0, 0.1) == pytest.approx(1e-3 * 5 / 0.1)
    assert lars_local_lr(5.0, 0.1, trust_coefficient=0.02, weight_decay=0.1) == pytest.approx(0.02 * 5 / (0.1 + 0.5))
    assert lars_local_lr(0.0, 1.0) == 1.0 and lars_local_lr(1.0, 0.0) == 1.0  # as pytorch_optimizer.LARS


def test_table_has_one_row_per_weight_matrix_with_exact_values():
    t = trust_ratio_table(_net())
    assert list(t["name"]) == ["0.weight", "2.weight"] and list(t["layer"]) == [1, 2]
    assert t["weight_norm"].tolist() == pytest.approx([5.0, 1.0])
    assert t["grad_norm"].tolist() == pytest.approx([0.1, 5.0])
    assert t["ratio"].tolist() == pytest.approx([50.0, 0.2])          # a 250× disparity
    assert t["lars_lr"].tolist() == pytest.approx([0.05, 2e-4])
    assert trust_ratio_table(_net(), min_ndim=1)["name"].tolist()[:2] == ["0.weight", "0.bias"]


def test_table_reads_eta_and_beta_from_a_lars_group():
    net = _net()
    opt = LARS(net.parameters(), lr=0.3, trust_coefficient=0.01, weight_decay=0.1)
    t = trust_ratio_table(net, opt, trust_coefficient=1e-3, weight_decay=0.0)
    assert t["lars_lr"].tolist() == pytest.approx([0.01 * 5 / (0.1 + 0.5), 0.01 * 1 / (5 + 0.1)])
    assert t["lr"].tolist() == [0.3, 0.3]
    sgd = torch.optim.SGD(net.parameters(), lr=0.2, weight_decay=0.5)  # not LARS: the arguments apply
    assert trust_ratio_table(net, sgd)["lars_lr"].tolist() == pytest.approx([0.05, 2e-4])


def test_zero_gradient_gives_an_infinite_ratio():
    net = _net()
    net[0].weight.grad.zero_()
    assert math.isinf(trust_ratio_table(net)["ratio"].iloc[0])


def test_monitor_records_every_n_steps_in_the_hook():
    net = _net()
    mon = TrustRatioMonitor(every=3)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for step in range(7):
        mon.on_before_optimizer_step(SimpleNamespace(global_step=step), net, opt)
    f = mon.frame()
    assert sorted(f["step"].unique()) == [0, 3, 6] and len(f) == 6
    assert f["ratio"].tolist()[:2] == pytest.approx([50.0, 0.2]) and f["lr"].iloc[0] == 0.1


def test_monitor_in_a_lightning_fit():
    from accel.data import make_datamodule
    from accel.module import Classifier
    from accel.training import fit

    dm = make_datamodule("digits", 128, seed=0, standardize=True)
    module = Classifier({"name": "mlp", "in_features": 64, "hidden": [16], "out_features": 10},
                        {"name": "lars", "lr": 1.0, "trust_coefficient": 0.02})
    mon = TrustRatioMonitor(every=2)
    fit(module, dm, 1, seed=0, callbacks=[mon])
    f = mon.frame()
    steps = math.ceil(len(dm.x_train) / 128)
    assert sorted(f["step"].unique()) == list(range(0, steps, 2))
    assert f.groupby("step").size().eq(2).all()  # two weight matrices
    assert f["lars_lr"].to_numpy() == pytest.approx((0.02 * f["weight_norm"] / f["grad_norm"]).to_numpy())


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="every"):
        TrustRatioMonitor(every=0)
    with pytest.raises(ValueError, match="trust_coefficient"):
        TrustRatioMonitor(trust_coefficient=0.0)
