"""The frozen whitening layer against its definition: whitened patches have identity covariance up to eps."""
import pytest
import torch

from accel.models.whitening import Whitening1d, patches, whitening_weights


def _signals(n=300, length=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    raw = torch.randn(n, length + 4, generator=g, dtype=torch.float64)
    return (raw[:, 4:] + 0.8 * raw[:, 3:-1] + 0.5 * raw[:, :-4]) * 2 + 0.3   # correlated, off-centre


def _cov(z):
    c = z - z.mean(0)
    return c.T @ c / (len(z) - 1)


def test_patches_are_the_sliding_windows():
    x = torch.arange(12.0).view(2, 6)
    p = patches(x, 3)
    assert p.shape == (2 * 4, 3)
    assert torch.equal(p[0], torch.tensor([0.0, 1, 2])) and torch.equal(p[5], torch.tensor([7.0, 8, 9]))
    assert torch.equal(patches(x.unsqueeze(1), 3), p)


def test_whitened_patches_have_zero_mean_and_identity_covariance_up_to_eps():
    x = _signals()
    eps = 1e-3
    w, b, lam = whitening_weights(x, 5, eps)
    z = patches(x, 5) @ w.T + b
    assert torch.allclose(z.mean(0), torch.zeros(5, dtype=torch.float64), atol=1e-10)
    expected = torch.diag(lam / (lam + eps))          # D^{-1/2} Vᵀ Σ V D^{-1/2}
    assert torch.allclose(_cov(z), expected, atol=1e-10)
    assert torch.allclose(_cov(z), torch.eye(5, dtype=torch.float64), atol=eps / lam.min().item())


def test_the_layer_is_that_map_and_is_frozen():
    x = _signals().float()
    layer = Whitening1d.from_data(x, 5, eps=1e-4, negate=True)
    assert layer.out_channels == 10 and not any(p.requires_grad for p in layer.parameters())
    out = layer(x)
    assert out.shape == (len(x), 10, x.shape[1] - 4)
    z = out[:, :5].permute(0, 2, 1).reshape(-1, 5).double()
    assert torch.allclose(out[:, 5:], -out[:, :5])
    assert torch.allclose(_cov(z), torch.eye(5, dtype=torch.float64), atol=2e-3)
    w, b, _ = whitening_weights(x, 5, 1e-4)
    ref = patches(x, 5).double() @ w.T + b
    assert torch.allclose(z, ref, atol=1e-4)


@pytest.mark.parametrize("bad, match", [(dict(kernel_size=0), "kernel_size"), (dict(kernel_size=50), "kernel_size"),
                                        (dict(eps=0.0), "eps")])
def test_bad_arguments_are_refused(bad, match):
    args = {"kernel_size": 5, "eps": 1e-3, **bad}
    with pytest.raises(ValueError, match=match):
        whitening_weights(_signals(n=5), args["kernel_size"], args["eps"])


def test_multichannel_input_is_refused():
    with pytest.raises(ValueError, match="single-channel"):
        patches(torch.zeros(2, 3, 10), 3)
