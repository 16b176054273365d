import pytest
import torch
from torch import nn

from accel.models import MODELS, TransformerClassifier, build_model


def test_shapes_and_registry():
    torch.manual_seed(0)
    net = build_model({"name": "transformer", "d_model": 16, "nhead": 2, "num_layers": 1})
    assert MODELS["transformer"] is TransformerClassifier
    assert net(torch.randn(5, 40)).shape == (5, 10)
    assert net(torch.randn(3, 40, 1)).shape == (3, 10)


@pytest.mark.parametrize("norm_first", [False, True])
def test_uses_torch_encoder_layers_in_the_chosen_order(norm_first):
    net = TransformerClassifier(norm_first=norm_first, num_layers=2)
    layers = [m for m in net.modules() if isinstance(m, nn.TransformerEncoderLayer)]
    assert len(layers) == 2 and all(layer.norm_first is norm_first for layer in layers)
    assert isinstance(net.norm, nn.LayerNorm if norm_first else nn.Identity)


def test_post_ln_output_of_each_layer_is_normalized():
    """Post-LN (Vaswani et al. 2017): every layer ends in LayerNorm, so its tokens have mean 0, var 1."""
    torch.manual_seed(0)
    net = TransformerClassifier(d_model=16, nhead=2, num_layers=1).eval()
    h = net.encoder(net.embed(torch.randn(4, 40, 1)) + net.position)
    assert h.mean(-1).abs().max() < 1e-5
    assert h.var(-1, unbiased=False).mean().item() == pytest.approx(1.0, abs=1e-3)


def test_permuting_positions_changes_the_output():
    """Without the position embedding, mean pooling would make the model permutation invariant."""
    torch.manual_seed(0)
    net = TransformerClassifier(d_model=16, nhead=2, num_layers=1).eval()
    x = torch.randn(2, 40)
    assert not torch.allclose(net(x), net(x.flip(1)))


def test_learns_a_tiny_task():
    torch.manual_seed(0)
    x = torch.randn(64, 40)
    y = (x[:, :20].sum(1) > 0).long()
    net = TransformerClassifier(num_classes=2, d_model=16, nhead=2, num_layers=1)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        loss = nn.functional.cross_entropy(net(x), y)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


@pytest.mark.parametrize("kw,match", [
    (dict(d_model=30, nhead=4), "divisible"), (dict(num_layers=0), "num_layers"),
    (dict(activation="tanh"), "valid: relu, gelu"), (dict(dropout=1.0), "dropout"),
])
def test_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        TransformerClassifier(**kw)


def test_bad_input_shape():
    with pytest.raises(ValueError, match="expected input"):
        TransformerClassifier()(torch.randn(2, 39))
