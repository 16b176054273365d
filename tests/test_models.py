import pytest
import torch
from torch import nn

from accel.models import CNN1d, CNN2d, INITS, MLP, NORMS, build_model, init_weights, make_norm
from accel.models.init import expected_variance
from accel.models.ws import WSConv1d, WSLinear, standardize


@pytest.mark.parametrize("name", ["default", "xavier_uniform", "xavier_normal", "he_uniform", "he_normal", "normal"])
def test_init_variance_matches_its_formula(name):
    torch.manual_seed(0)
    layer = nn.Linear(400, 600)
    init_weights(layer, name, std=0.05)
    want = expected_variance(name, fan_in=400, fan_out=600, std=0.05)
    got = layer.weight.var().item()
    # 240k draws: the sample variance is within 1 % of the truth with overwhelming probability
    assert got == pytest.approx(want, rel=0.02)


def test_default_init_is_pytorchs_uniform_bound():
    torch.manual_seed(0)
    w = nn.Linear(300, 50).weight
    assert w.abs().max().item() <= 1 / 300**0.5
    assert w.var().item() == pytest.approx(1 / (3 * 300), rel=0.05)


def test_zeros_and_constant_make_every_weight_equal():
    net = MLP(5, [4], 3, init="constant", init_std=0.3)
    for layer in [m for m in net if isinstance(m, nn.Linear)]:
        assert torch.all(layer.weight == 0.3) and torch.all(layer.bias == 0.3)
    net = MLP(5, [4], 3, init="zeros")
    assert all(torch.all(p == 0) for p in net.parameters())


@pytest.mark.parametrize("factory,kw,valid", [
    (init_weights, dict(model=nn.Linear(2, 2), name="lecun"), "xavier_uniform"),
    (make_norm, dict(name="batchnorm", num_features=4), "bn, ln, gn"),
    (build_model, dict(spec={"name": "resnet152"}), "mlp, cnn1d"),
])
def test_unknown_names_raise_listing_the_valid_ones(factory, kw, valid):
    with pytest.raises(ValueError, match=valid):
        factory(**kw)


def test_unknown_activation_and_norm_in_models():
    with pytest.raises(ValueError, match="relu, tanh"):
        MLP(4, [4], 2, activation="swish")
    with pytest.raises(ValueError, match="none, bn"):
        CNN1d(1, [8], 2, norm="batch")


def test_group_count_must_divide_the_channels():
    with pytest.raises(ValueError, match="divides 12"):
        make_norm("gn", 12, dim=1, groups=5)
    assert isinstance(make_norm("gn", 12, dim=2, groups=4), nn.GroupNorm)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("model", ["mlp", "cnn1d", "cnn2d"])
def test_every_norm_builds_for_every_model_and_runs(norm, model):
    spec = {"mlp": dict(name="mlp", in_features=64, hidden=[16, 16], out_features=10),
            "cnn1d": dict(name="cnn1d", in_channels=1, channels=[8, 16], num_classes=10),
            "cnn2d": dict(name="cnn2d", in_channels=1, channels=[8, 16], num_classes=10)}[model]
    net = build_model({**spec, "norm": norm})
    out = net(torch.randn(4, 64))
    assert out.shape == (4, 10)
    kinds = {type(m) for m in net.modules()}
    if norm == "ws":
        assert kinds & {WSLinear, WSConv1d} or model == "cnn2d"
    if norm == "bn":
        assert kinds & {nn.BatchNorm1d, nn.BatchNorm2d}


def test_weight_standardization_gives_zero_mean_unit_variance_rows():
    w = torch.randn(6, 3, 5) * 4 + 2
    s = standardize(w)
    assert torch.allclose(s.mean(dim=(1, 2)), torch.zeros(6), atol=1e-5)
    assert torch.allclose(s.var(dim=(1, 2), unbiased=False), torch.ones(6), atol=1e-3)


def test_cnn2d_refuses_non_square_inputs():
    with pytest.raises(ValueError, match="square"):
        CNN2d(1, [4], 10)(torch.randn(2, 50))


def test_init_names_are_the_documented_set():
    assert set(INITS) >= {"default", "zeros", "normal", "xavier_uniform", "xavier_normal", "he_uniform", "he_normal"}
