"""Folding BatchNorm into the layer before it: the formula, the same outputs, what cannot fold."""
import pytest
import torch
from torch import nn

from accel.models import build_model
from accel.models.fold import count_batchnorms, fold_batchnorm
from accel.models.ws import ScaledWSConv1d, WSConv1d


def _trained_statistics(net, x):
    """Non-trivial running statistics and affine parameters, as after training."""
    net.train()
    with torch.no_grad():
        for _ in range(4):
            net(x * 1.7 + 0.3)
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(0.5, 2.0)
                m.bias.normal_()
    return net.eval()


@pytest.mark.parametrize("spec", [
    {"name": "resnet1d", "widths": [8, 16], "blocks": 2, "norm": "bn", "preact": False},
    {"name": "resnet1d", "widths": [8, 16], "blocks": 2, "norm": "noisy_bn", "preact": False},
    {"name": "resnet1d", "widths": [8, 16], "blocks": 1, "norm": "bn", "preact": False, "ghost_size": 4},
    {"name": "resnet2d", "widths": [4, 8], "blocks": 1, "norm": "bn", "preact": False, "stem_stride": 2},
    {"name": "cnn1d", "in_channels": 1, "channels": [8, 16], "num_classes": 10, "norm": "bn"},
    {"name": "mlp", "in_features": 40, "hidden": [32, 32], "out_features": 10, "norm": "bn"},
], ids=["resnet1d-post", "noisy-post", "ghost-post", "resnet2d-post", "cnn1d", "mlp"])
def test_every_batchnorm_after_a_layer_folds_and_outputs_agree(spec):
    torch.manual_seed(0)
    net = build_model(spec).double()
    x = torch.randn(32, 784 if spec["name"] == "resnet2d" else 40, dtype=torch.float64)
    _trained_statistics(net, x)
    before = count_batchnorms(net)
    folded, n_folded, n_left = fold_batchnorm(net)
    assert n_folded == before > 0 and n_left == 0
    torch.testing.assert_close(folded(x), net(x), rtol=1e-10, atol=1e-10)
    assert count_batchnorms(net) == before  # the original keeps its BatchNorms


def test_pre_activation_blocks_keep_the_batchnorm_that_follows_an_addition():
    torch.manual_seed(0)
    net = build_model({"name": "resnet1d", "widths": [8, 16], "blocks": 2, "norm": "bn"})
    x = torch.randn(32, 40)
    _trained_statistics(net, x)
    folded, n_folded, n_left = fold_batchnorm(net)
    assert (n_folded, n_left) == (4, 5)  # conv1 → BN inside each block folds; the input BNs and the final BN stay
    torch.testing.assert_close(folded(x), net(x), rtol=1e-5, atol=1e-5)


def test_the_folded_weights_are_the_formula():
    conv, bn = nn.Conv1d(2, 3, 3), nn.BatchNorm1d(3)
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor([0.5, -1.0, 2.0]))
        bn.running_var.copy_(torch.tensor([4.0, 0.25, 1.0]))
        bn.weight.copy_(torch.tensor([2.0, 1.0, -1.0]))
        bn.bias.copy_(torch.tensor([0.1, 0.2, 0.3]))
    folded, n, _ = fold_batchnorm(nn.Sequential(conv, bn))
    k = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    torch.testing.assert_close(folded[0].weight, conv.weight * k.view(3, 1, 1))
    torch.testing.assert_close(folded[0].bias, (conv.bias - bn.running_mean) * k + bn.bias)
    assert n == 1 and isinstance(folded[1], nn.Identity)


@pytest.mark.parametrize("layer", [WSConv1d(3, 4, 3), ScaledWSConv1d(3, 4, 3, gamma=1.7)], ids=["ws", "sws"])
def test_weight_standardized_layers_fold_through_their_effective_weight(layer):
    net = nn.Sequential(layer, nn.BatchNorm1d(4))
    x = torch.randn(16, 3, 10)
    _trained_statistics(net, x)
    folded, n, _ = fold_batchnorm(net)
    assert n == 1 and type(folded[0]) is nn.Conv1d
    torch.testing.assert_close(folded(x), net(x), rtol=1e-5, atol=1e-5)


def test_a_batchnorm_without_a_layer_before_it_is_left_and_counted():
    net = nn.Sequential(nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2))
    _trained_statistics(net, torch.randn(8, 3))
    _, n_folded, n_left = fold_batchnorm(net)
    assert (n_folded, n_left) == (0, 1)


def test_not_a_module_is_refused():
    with pytest.raises(ValueError, match="nn.Module"):
        fold_batchnorm("resnet")
