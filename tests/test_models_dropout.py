"""MLP's dropout option (default 0: the network as before, bit for bit) and the added activations."""
import pytest
import torch
from torch import nn

from accel.models import MLP
from accel.models.activation import ACTIVATIONS, make_activation


def test_dropout_zero_is_the_previous_network_bitwise():
    torch.manual_seed(0)
    a = MLP(10, [16, 16], 3)
    torch.manual_seed(0)
    b = MLP(10, [16, 16], 3, dropout=0.0)
    assert [type(m) for m in a] == [type(m) for m in b]
    assert not any(isinstance(m, nn.Dropout) for m in b)
    for (na, pa), (nb, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert na == nb and torch.equal(pa, pb)


def test_dropout_after_every_hidden_activation_and_off_in_eval():
    torch.manual_seed(0)
    plain = MLP(10, [16, 16], 3)
    torch.manual_seed(0)
    net = MLP(10, [16, 16], 3, dropout=0.5)
    assert sum(isinstance(m, nn.Dropout) for m in net) == 2
    x = torch.randn(64, 10)
    net.eval(), plain.eval()
    torch.testing.assert_close(net(x), plain(x))            # same initial weights, no dropout in eval
    net.train()
    torch.manual_seed(1)
    out = x
    for i in range(4):                                       # Flatten, Linear, Identity, ReLU, then Dropout
        out = net[i](out)
    dropped = net[4](out)
    kept = dropped != 0
    torch.testing.assert_close(dropped[kept], 2 * out[kept])  # survivors scaled by 1/(1 − p)
    assert 0.3 < 1 - kept[out != 0].float().mean() < 0.7


@pytest.mark.parametrize("bad", [-0.1, 1.0, True, "0.5"])
def test_bad_dropout(bad):
    with pytest.raises(ValueError, match="dropout"):
        MLP(4, [4], 2, dropout=bad)


def test_silu_and_centered_sigmoid():
    x = torch.linspace(-5, 5, 101)
    torch.testing.assert_close(make_activation("silu")(x), x * torch.sigmoid(x))
    c = make_activation("centered_sigmoid")(x)
    torch.testing.assert_close(c, torch.tanh(x / 2) / 2)
    assert abs(float(c.mean())) < 1e-6 and "centered_sigmoid" in ACTIVATIONS
    MLP(4, [4], 2, activation="silu")(torch.randn(2, 4))
