"""Dead-unit monitor: exact fractions on hand-made activations and networks."""
import pytest
import torch

from accel.callbacks.dead_units import DeadUnitMonitor, dead_fractions, inactive_fraction
from accel.data import TensorDataModule
from accel.models import MLP
from accel.module import Classifier
from accel.seeding import seed_everything
from accel.training import fit


def test_inactive_fraction_counts_units_zero_for_every_sample():
    pre = torch.tensor([[-1.0, 2.0, 0.0, -3.0],
                        [-2.0, -1.0, -0.5, 1.0],
                        [0.0, -4.0, -1.0, -1.0]])
    # unit 0: ≤ 0 everywhere (dead); unit 1: positive once; unit 2: ≤ 0 everywhere; unit 3: positive once
    assert inactive_fraction(pre) == 0.5


def test_a_channel_is_dead_only_if_inactive_at_every_position():
    pre = -torch.ones(2, 3, 5)       # (batch, channels, length)
    pre[1, 1, 4] = 0.1               # channel 1 fires once
    assert inactive_fraction(pre) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="batch, units"):
        inactive_fraction(torch.ones(3))


def test_dead_fractions_of_an_mlp_with_killed_units():
    seed_everything(0)
    net = MLP(4, [8, 10], 2, activation="relu")
    with torch.no_grad():
        net[1].bias.fill_(1.0)     # every unit fires on some input ...
        net[4].bias.fill_(1e3)
        net[1].bias[:2] = -1e3     # ... except 2 of 8 first-layer units, which never can
        net[4].bias[:5] = -1e3     # and 5 of 10 second-layer units
    net.train()
    table = dead_fractions(net, torch.randn(64, 4))
    assert table["dead"].tolist() == [0.25, 0.5]
    assert list(table["name"]) == ["3", "6"] and list(table["layer"]) == [1, 2]
    assert net.training                               # mode restored
    assert not any(m._forward_hooks for m in net.modules())  # hooks removed


def test_monitor_records_over_training():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(128, 4, generator=g)
    y = (x[:, 0] > 0).long()
    dm = TensorDataModule(x[:96].numpy(), y[:96].numpy(), x[96:].numpy(), y[96:].numpy(), 16)
    seed_everything(0)
    net = MLP(4, [8], 2)
    with torch.no_grad():
        net[1].bias[:4] = -1e3     # dead from the start, and they stay dead: no gradient reaches them
    mon = DeadUnitMonitor(x[:32], every=4)
    fit(Classifier(net, {"name": "sgd", "lr": 0.1}), dm, 2, callbacks=[mon])
    frame = mon.frame()
    assert list(frame["step"]) == [0, 4, 8, 12]
    assert (frame["dead"] >= 0.5).all()
    assert mon.final()["step"].tolist() == [12]
    assert list(mon.overall().columns) == ["step", "dead"]


def test_bad_every():
    with pytest.raises(ValueError, match="every"):
        DeadUnitMonitor(torch.zeros(1, 1), every=0)


def test_mostly_active_counts_units_positive_on_more_than_half_the_samples():
    from accel.callbacks.dead_units import mostly_active_fraction
    pre = torch.tensor([[1.0, 1.0, -1.0, 0.0],
                        [1.0, -1.0, -1.0, 2.0],
                        [-1.0, 1.0, -1.0, 3.0]])
    # units 0, 1 and 3 are > 0 on 2 of 3 samples; unit 2 never (0 counts as inactive)
    assert mostly_active_fraction(pre) == 0.75
    assert mostly_active_fraction(torch.tensor([[1.0], [-1.0]])) == 0.0   # exactly half is not most
    with pytest.raises(ValueError, match="batch, units"):
        mostly_active_fraction(torch.ones(3))


def test_a_positive_bias_makes_first_layer_units_mostly_active():
    seed_everything(0)
    net = MLP(4, [16], 2, activation="relu", init="he_normal")
    x = torch.randn(256, 4)
    with torch.no_grad():
        net[1].bias.fill_(0.0)
        base = dead_fractions(net, x)
        net[1].bias.fill_(10.0)      # far above every pre-activation: active on every input
        shifted = dead_fractions(net, x)
    assert list(base.columns) == ["layer", "name", "dead", "mostly_active"]
    assert shifted.mostly_active.iloc[0] == 1.0 and shifted.dead.iloc[0] == 0.0
    assert base.mostly_active.iloc[0] < 1.0
