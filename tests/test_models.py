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
    if norm == "in" and model == "mlp":
        with pytest.raises(ValueError, match="InstanceNorm needs positions"):
            build_model({**spec, "norm": norm})
        return
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


# --- chapter 4 (normalization) additions ---------------------------------------------
import math

from accel.models import SequenceClassifier
from accel.models.norm import check_groups
from accel.models.sequence import SequenceNorm
from accel.models.ws import ScaledWSConv1d, ScaledWSLinear, activation_gain


@pytest.mark.parametrize("groups", [0, 5, 2.0, True])
def test_group_count_errors_list_the_valid_divisors(groups):
    with pytest.raises(ValueError, match=r"valid: \[1, 2, 3, 4, 6, 12\]"):
        check_groups(12, groups)
    with pytest.raises(ValueError, match="divides 12"):
        CNN1d(1, [12], 10, norm="gn", groups=groups)


def test_wsgn_uses_standardized_weights_and_groupnorm():
    net = CNN1d(1, [8, 8], 10, norm="wsgn", groups=4)
    kinds = [type(m) for m in net.modules()]
    assert WSConv1d in kinds and nn.GroupNorm in kinds
    assert [m.num_groups for m in net.modules() if isinstance(m, nn.GroupNorm)] == [4, 4]


def test_activation_gain_matches_the_closed_forms():
    # ReLU: Var(relu(z)) = ½ − 1/(2π) (Brock et al. 2021); identity: 1; tanh: a number between
    assert activation_gain("relu") == pytest.approx(math.sqrt(2 / (1 - 1 / math.pi)), rel=1e-6)
    assert activation_gain(None) == 1.0 and activation_gain("identity") == 1.0
    assert activation_gain("tanh") > 1.0


def test_scaled_ws_rows_have_norm_gamma_and_keep_unit_variance_through_relu_depth():
    torch.manual_seed(0)
    gamma = activation_gain("relu")
    layer = ScaledWSLinear(200, 300, gamma=gamma)
    w = layer.scaled_weight()
    assert torch.allclose(w.mean(1), torch.zeros(300), atol=1e-6)
    assert torch.allclose(w.pow(2).sum(1), torch.full((300,), gamma**2), rtol=1e-3)
    # a 10-layer ReLU MLP with scaled WS and no normalization keeps its pre-activations at unit scale
    net = MLP(200, [200] * 10, 10, norm="sws", activation="relu")
    x = torch.randn(2000, 200)
    stds = []
    for m in net:
        x = m(x)
        if isinstance(m, ScaledWSLinear):
            stds.append(x.std().item())
    assert all(0.7 < s < 1.4 for s in stds), stds
    assert any(isinstance(m, ScaledWSConv1d) for m in CNN1d(1, [8], 10, norm="sws").modules())


def test_scaled_ws_gain_is_learnable():
    layer = ScaledWSLinear(4, 3, gamma=1.0)
    assert layer.gain.shape == (3, 1)
    layer(torch.randn(5, 4)).sum().backward()
    assert layer.gain.grad is not None


@pytest.mark.parametrize("norm", ["none", "bn", "bn_t", "ln"])
def test_sequence_classifier_runs_with_every_norm(norm):
    net = build_model({"name": "sequence", "length": 40, "num_classes": 10, "norm": norm, "d_model": 16})
    assert net(torch.randn(6, 40)).shape == (6, 10)
    assert net(torch.randn(6, 40, 1)).shape == (6, 10)


def test_sequence_norm_statistics_axes():
    torch.manual_seed(0)
    x = torch.randn(8, 5, 4) * torch.arange(1, 6).view(1, 5, 1) + 3  # scale differs per time step
    ln = SequenceNorm("ln", 4, 5)(x)
    assert torch.allclose(ln.mean(-1), torch.zeros(8, 5), atol=1e-5)  # per token
    bn = SequenceNorm("bn", 4, 5).train()(x)
    assert torch.allclose(bn.mean((0, 1)), torch.zeros(4), atol=1e-5)  # over batch × time
    assert not torch.allclose(bn.std(0), torch.ones(5, 4), atol=0.2)
    bnt = SequenceNorm("bn_t", 4, 5).train()(x)
    assert torch.allclose(bnt.mean(0), torch.zeros(5, 4), atol=1e-5)  # per time step, over the batch
    with pytest.raises(ValueError, match="none, bn, bn_t, ln"):
        SequenceNorm("gn", 4, 5)


def test_layernorm_sequence_model_is_batch_independent_and_mode_independent():
    torch.manual_seed(0)
    net = SequenceClassifier(norm="ln", d_model=16).train()
    x = torch.randn(6, 40)
    full = net(x)
    assert torch.allclose(full[:2], net(x[:2]), atol=1e-5)
    assert torch.allclose(full, net.eval()(x), atol=1e-6)


def test_sequence_classifier_checks_its_shapes():
    with pytest.raises(ValueError, match="length 40"):
        SequenceClassifier()(torch.randn(2, 30))
    with pytest.raises(ValueError, match="multiple of heads"):
        SequenceClassifier(d_model=10, heads=4)


def test_predict_with_batch_statistics_leaves_the_model_alone():
    from accel.models.norm import predict
    torch.manual_seed(0)
    bn = MLP(10, [16], 3, norm="bn")
    bn.train()(torch.randn(64, 10) * 3 + 2)  # running stats now differ from the defaults
    before = {k: v.clone() for k, v in bn.state_dict().items()}
    x = torch.randn(32, 10)
    train_mode = predict(bn, x, batch_size=8, batch_stats=True)
    assert all(torch.equal(before[k], v) for k, v in bn.state_dict().items())
    assert bn.training  # the original keeps its mode
    by_hand = torch.cat([nn.functional.batch_norm(bn[1](x[i:i + 8]), None, None, bn[2].weight, bn[2].bias,
                                                  training=True) for i in range(0, 32, 8)])
    assert torch.allclose(train_mode, bn[4](bn[3](by_hand)), atol=1e-5)
    assert not torch.allclose(train_mode, predict(bn, x), atol=1e-3)
    ln = MLP(10, [16], 3, norm="ln")
    assert torch.equal(predict(ln, x, batch_size=4, batch_stats=True), predict(ln, x))
    with pytest.raises(ValueError, match="divisor"):
        predict(bn, x, batch_size=5, batch_stats=True)
