"""The small residual network: shapes, norms, the residual scale α, SkipInit, the NF-ResNet β."""
import math

import pytest
import torch

from accel.models import build_model
from accel.models.noisy_norm import NoisyBatchNorm
from accel.models.resnet import NF_ALPHA, RESNET_NORMS, InputScale, ResidualBlock, ResNet1d, Scale

SMALL = dict(widths=[8, 16], blocks=2)


@pytest.mark.parametrize("norm", RESNET_NORMS)
@pytest.mark.parametrize("preact", [True, False])
def test_every_norm_builds_runs_and_backpropagates(norm, preact):
    net = build_model({"name": "resnet1d", **SMALL, "norm": norm, "preact": preact})
    out = net(torch.randn(6, 40))
    assert out.shape == (6, 10)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_two_dimensional_net_takes_flat_square_images_and_refuses_others():
    net = build_model({"name": "resnet2d", **SMALL, "norm": "bn", "stem_stride": 2})
    assert net(torch.randn(3, 784)).shape == (3, 10)
    assert net(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    with pytest.raises(ValueError, match="square"):
        net(torch.randn(3, 780))


def test_stages_halve_the_length_and_project_the_skip_path():
    net = ResNet1d(**SMALL, norm="bn")
    blocks = [m for m in net.modules() if isinstance(m, ResidualBlock)]
    assert [b.project for b in blocks] == [False, False, True, False]
    assert net.features(torch.randn(2, 40)).shape == (2, 16, 20)


def test_residual_scale_defaults_to_nf_alpha_for_sws_and_one_otherwise():
    def alphas(net):
        return {round(float(m.alpha), 6) for m in net.modules() if isinstance(m, Scale)}
    assert alphas(ResNet1d(**SMALL, norm="sws")) == {NF_ALPHA}
    assert alphas(ResNet1d(**SMALL, norm="bn")) == {1.0}
    assert alphas(ResNet1d(**SMALL, norm="none", alpha=0.5)) == {0.5}


def test_skipinit_blocks_start_as_the_identity_and_learn_their_scale():
    net = ResNet1d(**SMALL, norm="none", skipinit=True)
    scales = [m for m in net.modules() if isinstance(m, Scale)]
    assert all(s.learnable and isinstance(s.alpha, torch.nn.Parameter) and float(s.alpha.detach()) == 0 for s in scales)
    block = next(m for m in net.modules() if isinstance(m, ResidualBlock) and not m.project)
    x = torch.randn(4, 8, 20)
    torch.testing.assert_close(block(x), x)
    net(torch.randn(5, 40)).pow(2).sum().backward()
    assert all(s.alpha.grad is not None and s.alpha.grad != 0 for s in scales)


def test_nf_beta_is_the_expected_std_reset_after_each_transition():
    net = ResNet1d(widths=[8, 16], blocks=3, norm="sws", alpha=0.2)
    betas = [m.beta for m in net.modules() if isinstance(m, InputScale)]
    var = [1.0, 1.04, 1.08, 1.12, 1.04, 1.08]  # 1 + l·α² within a stage; the transition resets to 1 + α²
    assert betas == pytest.approx([math.sqrt(v) for v in var])


def test_nf_net_keeps_the_predicted_variance_at_initialization():
    """Var(h_l) = 1 + l·α² for unit-variance i.i.d. inputs (Brock et al. 2021a)."""
    torch.manual_seed(0)
    net = ResNet1d(in_channels=1, widths=[64], blocks=6, norm="sws", alpha=0.3).train()
    outs = []
    hooks = [b.register_forward_hook(lambda m, i, o: outs.append(o.var(dim=(0, 2)).mean().item()))
             for b in net.modules() if isinstance(b, ResidualBlock)]
    with torch.no_grad():
        net.features(torch.randn(512, 1, 64))
    for h in hooks:
        h.remove()
    stem = 1.0  # a scaled-WS stem maps unit-variance i.i.d. inputs to unit variance
    for l, v in enumerate(outs, 1):
        assert v == pytest.approx(stem + l * 0.09, rel=0.2)


def test_noisy_bn_sits_after_every_batchnorm():
    net = ResNet1d(**SMALL, norm="noisy_bn", noise_shift=0.3, noise_scale=1.2)
    noisy = [m for m in net.modules() if isinstance(m, NoisyBatchNorm)]
    plain = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(noisy) == len(plain) == 2 * 4 + 1 and all(n.shift == 0.3 and n.scale == 1.2 for n in noisy)


def test_noisy_and_plain_batchnorm_nets_built_after_one_seed_share_their_weights():
    torch.manual_seed(3)
    plain = ResNet1d(**SMALL, norm="bn")
    torch.manual_seed(3)
    noisy = ResNet1d(**SMALL, norm="noisy_bn")
    for p, q in zip(plain.parameters(), noisy.parameters()):
        assert torch.equal(p, q)
    seeds = {int(m.seed) for m in noisy.modules() if isinstance(m, NoisyBatchNorm)}
    assert len(seeds) == 9  # every layer its own noise


def test_ghost_size_reaches_the_batchnorms():
    net = ResNet1d(**SMALL, norm="bn", ghost_size=4)
    assert {m.ghost_size for m in net.modules() if hasattr(m, "ghost_size")} == {4}


@pytest.mark.parametrize("kw, match", [
    (dict(norm="batch"), "unknown norm 'batch'; valid: .*noisy_bn"),
    (dict(widths=[]), "widths"),
    (dict(widths=[8, 0]), "widths"),
    (dict(blocks=0), "blocks"),
    (dict(kernel_size=4), "kernel_size"),
    (dict(alpha=-0.1), "alpha"),
    (dict(norm="ln", ghost_size=4), "ghost_size"),
])
def test_bad_arguments_are_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        ResNet1d(**{**SMALL, **kw})
