"""Augmentations: the mnist1d package's formulas, batched, deterministic given the generator."""
import importlib

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter1d

from accel.data import augment

m1d = importlib.import_module("mnist1d.transform")  # the module (the package re-exports a function of that name)


def g(seed=0):
    return torch.Generator().manual_seed(seed)


def test_shift_is_mnist1d_translate_and_stays_in_range():
    x = torch.arange(40, dtype=torch.float64)
    for k in (1, 5, 39):   # mnist1d.transform.translate's formula
        np.testing.assert_array_equal(torch.roll(x, k).numpy(), np.concatenate([x.numpy()[-k:], x.numpy()[:-k]]))
    batch = torch.arange(40.0).repeat(500, 1)
    out = augment.shift(batch, 3, g())
    k = (out[:, 0] * -1) % 40          # where sample 0 came from: x[(0 - k) % 40]
    assert set(k.long().tolist()) == {0, 1, 2, 3, 37, 38, 39}
    for row in out[:20]:              # each row is a circular roll of the original
        s = int((-row[0]) % 40)
        assert torch.equal(row, torch.roll(batch[0], s))


def test_shift_matches_mnist1d_translate(monkeypatch):
    x = np.random.default_rng(0).normal(size=40)
    monkeypatch.setattr(np.random, "choice", lambda n: 7)
    expected = m1d.translate(x, 48)
    assert np.allclose(np.roll(x, 7), expected)


def test_shear_matches_mnist1d(monkeypatch):
    x = torch.randn(1, 40, dtype=torch.float64)
    gen = g(1)
    u = float(torch.rand(1, generator=g(1)))
    monkeypatch.setattr(np.random, "rand", lambda: u)
    expected = m1d.shear(x[0].numpy(), 0.75)
    np.testing.assert_allclose(augment.shear(x, 0.75, gen)[0].numpy(), expected, atol=1e-12)


def test_smooth_is_scipys_gaussian_filter():
    x = torch.randn(3, 40, dtype=torch.float64)
    expected = gaussian_filter1d(x.numpy(), 2.0, axis=-1)  # mode reflect, truncate 4
    np.testing.assert_allclose(augment.smooth(x, 2.0).numpy(), expected, atol=1e-12)
    assert abs(float(augment.gaussian_kernel(2.0).sum()) - 1) < 1e-12
    with pytest.raises(ValueError, match="sigma"):
        augment.gaussian_kernel(0)


def test_noise_scales():
    x = torch.zeros(2000, 40)
    assert abs(float(augment.iid_noise(x, 0.5, g()).std()) - 0.5) < 0.01
    corr = augment.correlated_noise(x, 1.0, g())
    # smoothing a unit white noise by a Gaussian of width σ leaves std (2σ√π)^(-1/2) ≈ 0.53 at σ = 2
    assert abs(float(corr.std()) - (2 * 2.0 * np.pi ** 0.5) ** -0.5) < 0.03


def test_augment_is_deterministic_given_the_generator_and_identity_when_off():
    x = torch.randn(8, 40)
    a = augment.Augment(max_shift=5, corr_noise=0.25, iid_noise=0.02, shear=0.75)
    assert torch.equal(a(x, g(3)), a(x, g(3)))
    assert not torch.equal(a(x, g(3)), a(x, g(4)))
    assert torch.equal(augment.Augment()(x, g()), x) and not augment.Augment().active


@pytest.mark.parametrize("kwargs", [dict(max_shift=-1), dict(max_shift=1.5), dict(iid_noise=-0.1),
                                    dict(corr_noise=-1), dict(shear=-2)])
def test_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        augment.Augment(**kwargs)
