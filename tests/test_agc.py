"""AGC (Brock et al. 2021, Sec. 4.1) against hand-computed values."""
import math

import pytest
import torch
from torch import nn

from accel.callbacks.agc import AdaptiveGradientClipping, clip_parameters, head_parameters, unitwise_clip


def test_linear_rows_are_the_units():
    # Row 0: ‖W‖ = 5, ‖G‖ = 1 -> ratio 0.2 > λ = 0.1: scaled to norm λ·5 = 0.5.
    # Row 1: ‖W‖ = 10, ‖G‖ = 0.5 -> ratio 0.05 <= 0.1: unchanged.
    w = torch.tensor([[3.0, 4.0], [6.0, 8.0]])
    g = torch.tensor([[0.6, 0.8], [0.3, 0.4]])
    out = unitwise_clip(w, g, clipping=0.1)
    assert torch.allclose(out[0], torch.tensor([0.3, 0.4]))
    assert torch.equal(out[1], g[1])
    assert torch.equal(g, torch.tensor([[0.6, 0.8], [0.3, 0.4]]))  # input untouched


def test_eps_floor_lets_zero_weights_move():
    # ‖W‖ = 0 -> max(‖W‖, ε) = 1e-3; ‖G‖ = 2 -> clipped to norm λ·ε = 1e-5.
    w = torch.zeros(1, 4)
    g = torch.tensor([[2.0, 0.0, 0.0, 0.0]])
    out = unitwise_clip(w, g, clipping=0.01, eps=1e-3)
    assert out[0, 0].item() == pytest.approx(1e-5)
    assert torch.count_nonzero(out[0, 1:]) == 0


def test_bias_uses_whole_vector_norm():
    w = torch.tensor([1.0, 0.0])             # ‖w‖ = 1
    g = torch.tensor([3.0, 4.0])             # ‖g‖ = 5, ratio 5 > λ = 0.5 -> norm 0.5
    out = unitwise_clip(w, g, clipping=0.5)
    assert torch.allclose(out, torch.tensor([0.3, 0.4]))


def test_conv1d_filter_is_the_unit():
    # A Conv1d weight (out=1, in=2, k=2): the unit norm is over in and k together.
    w = torch.tensor([[[1.0, 1.0], [1.0, 1.0]]])   # ‖W_0‖ = 2
    g = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])   # ‖G_0‖ = √2, ratio √2/2 > λ = 0.5
    out = unitwise_clip(w, g, clipping=0.5)
    expected = g * (0.5 * 2 / math.sqrt(2))
    assert torch.allclose(out, expected)
    assert out.norm().item() == pytest.approx(1.0)


def test_conv2d_and_random_against_formula():
    torch.manual_seed(0)
    w, g, lam, eps = torch.randn(5, 3, 2, 2), torch.randn(5, 3, 2, 2) * 0.3, 0.2, 1e-3
    out = unitwise_clip(w, g, lam, eps)
    for i in range(5):
        wn, gn = max(w[i].norm().item(), eps), g[i].norm().item()
        want = g[i] * (lam * wn / gn) if gn / wn > lam else g[i]
        assert torch.allclose(out[i], want, atol=1e-6)


def test_clip_parameters_counts_and_skips_head():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    for p in net.parameters():
        p.grad = torch.full_like(p, 100.0)
    head = {id(p) for p in head_parameters(net)}
    assert head == {id(net[2].weight), id(net[2].bias)}
    body = [p for p in net.parameters() if id(p) not in head]
    assert clip_parameters(body, 0.01) == 2
    assert torch.all(net[2].weight.grad == 100.0)
    assert net[0].weight.grad.norm(dim=1).max() <= 0.01 * net[0].weight.norm(dim=1).max() + 1e-6


def test_bad_arguments():
    with pytest.raises(ValueError, match="clipping"):
        AdaptiveGradientClipping(clipping=0)
    with pytest.raises(ValueError, match="clipping"):
        unitwise_clip(torch.ones(2), torch.ones(2), clipping=-1)
