"""Input preprocessing variants: each against its definition, fitted on the training split."""
import numpy as np
import pytest

from accel.data import transforms


def _data(seed=0, n=500, d=6):
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d))
    x = (rng.normal(size=(n, d)) @ mix + rng.normal(size=d) * 5).astype(np.float32)
    xt = (rng.normal(size=(100, d)) @ mix).astype(np.float32)
    return x, xt


def test_center_removes_the_training_mean_only():
    x, xt = _data()
    c, ct = transforms.center(x, xt)
    np.testing.assert_allclose(c.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(c.std(0), x.std(0), rtol=1e-4)
    np.testing.assert_allclose(ct, xt - x.mean(0), atol=1e-4)


def test_standardize_keeps_its_behaviour():
    x, xt = _data()
    s, st = transforms.standardize(x, xt)
    np.testing.assert_allclose(s.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(s.std(0), 1, atol=1e-4)
    assert st.shape == xt.shape


def test_shifted_is_standardized_plus_the_offset():
    x, xt = _data()
    s, st = transforms.preprocess("standardized", x, xt)
    m, mt = transforms.preprocess("shifted", x, xt, offset=1.5)
    np.testing.assert_allclose(m, s + 1.5, atol=1e-6)
    np.testing.assert_allclose(mt, st + 1.5, atol=1e-6)
    with pytest.raises(ValueError, match="offset"):
        transforms.mean_shift(x, xt, offset=float("nan"))


def test_pca_whitening_gives_identity_covariance_on_train():
    x, xt = _data()
    w, wt = transforms.pca_whiten(x, xt)
    np.testing.assert_allclose(w.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(np.cov(w, rowvar=False, bias=True), np.eye(x.shape[1]), atol=1e-3)
    assert wt.shape == xt.shape


def test_whitening_floors_directions_without_variance():
    x, xt = _data()
    x = np.c_[x, x[:, :1] * 2.0]          # an exactly dependent feature: a zero eigenvalue
    xt = np.c_[xt, xt[:, :1] * 2.0 + 1.0]  # which the test set violates
    w, wt = transforms.pca_whiten(x, xt, min_relative_eig=1e-3)
    assert np.isfinite(wt).all() and np.abs(wt).max() < 1e3
    with pytest.raises(ValueError, match="min_relative_eig"):
        transforms.pca_whiten(x, xt, min_relative_eig=0)


def test_unknown_preprocessing_names_the_valid_ones():
    x, xt = _data()
    with pytest.raises(ValueError, match="shifted, centered, standardized, whitened"):
        transforms.preprocess("zca", x, xt)
