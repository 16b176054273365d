"""Input preprocessing fitted on the training split and applied to both splits.

Centring and scaling each input (LeCun et al. 1998, "Efficient BackProp", §4.3) uses
scikit-learn's ``StandardScaler``. A feature with (almost) no spread in the training
set, such as an MNIST border pixel that is non-zero in a handful of images, would be
divided by a near-zero standard deviation, and the same pixel in a test image would
come out in the thousands; so every scale is floored at ``min_relative_std`` times the
median scale of the features that do vary.
"""
from __future__ import annotations

import numpy as np
from sklearn.preprocessing import StandardScaler


def standardize(x_train: np.ndarray, x_test: np.ndarray, *, min_relative_std: float = 0.1
                ) -> tuple[np.ndarray, np.ndarray]:
    """``(x_train, x_test)`` centred and scaled per feature with the training statistics."""
    if not 0 <= min_relative_std <= 1:
        raise ValueError(f"min_relative_std must be in [0, 1], got {min_relative_std!r}")
    shape_tr, shape_te = x_train.shape, x_test.shape
    flat_tr, flat_te = x_train.reshape(len(x_train), -1), x_test.reshape(len(x_test), -1)
    scaler = StandardScaler().fit(flat_tr)
    spread = scaler.scale_[np.asarray(scaler.var_) > 0]
    floor = min_relative_std * float(np.median(spread)) if spread.size else 1.0
    scaler.scale_ = np.maximum(scaler.scale_, floor)
    return (scaler.transform(flat_tr).astype(np.float32).reshape(shape_tr),
            scaler.transform(flat_te).astype(np.float32).reshape(shape_te))


# ---------------------------------------------------------------- preprocessing variants (LeCun et al. 1998, §4.3)

PREPROCESSING = ("shifted", "centered", "standardized", "whitened")


def _flat(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).reshape(len(x), -1)


def mean_shift(x_train: np.ndarray, x_test: np.ndarray, *, offset: float) -> tuple[np.ndarray, np.ndarray]:
    """Both splits with ``offset`` added to every feature: inputs whose mean is far from zero.

    The case "Efficient BackProp" warns about: when every input of a unit has the same
    sign, the updates of its incoming weights share a sign too, and the input
    second-moment matrix gains one large eigenvalue along the mean (its κ grows).
    """
    if not np.isfinite(offset):
        raise ValueError(f"offset must be a finite number, got {offset!r}")
    return ((np.asarray(x_train) + offset).astype(np.float32), (np.asarray(x_test) + offset).astype(np.float32))


def center(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both splits minus the training set's per-feature mean (no scaling)."""
    mean = np.asarray(x_train, dtype=np.float64).mean(0)
    return ((x_train - mean).astype(np.float32), (x_test - mean).astype(np.float32))


def pca_whiten(x_train: np.ndarray, x_test: np.ndarray, *, min_relative_eig: float = 1e-3
               ) -> tuple[np.ndarray, np.ndarray]:
    """Centred, rotated onto the training covariance's eigenvectors and scaled to unit variance.

    PCA whitening makes the training inputs' covariance the identity, so a linear unit's
    Hessian is as well conditioned as centring, scaling and decorrelating can make it
    (LeCun et al. 1998, §4.3). A direction with almost no variance would be divided by
    almost zero (the failure :func:`standardize` guards against), so every eigenvalue is
    floored at ``min_relative_eig`` times the largest. Returns ``(n, d)`` arrays of the
    flattened features.
    """
    if not 0 < min_relative_eig <= 1:
        raise ValueError(f"min_relative_eig must be in (0, 1], got {min_relative_eig!r}")
    flat_tr, flat_te = _flat(x_train), _flat(x_test)
    mean = flat_tr.mean(0)
    eig, vec = np.linalg.eigh(np.cov(flat_tr - mean, rowvar=False, bias=True))
    eig = np.maximum(eig, min_relative_eig * float(eig.max()))
    project = vec / np.sqrt(eig)
    return (((flat_tr - mean) @ project).astype(np.float32), ((flat_te - mean) @ project).astype(np.float32))


def preprocess(name: str, x_train: np.ndarray, x_test: np.ndarray, *, offset: float = 3.0
               ) -> tuple[np.ndarray, np.ndarray]:
    """One of :data:`PREPROCESSING`, fitted on the training split: ``shifted`` (standardized,
    then ``offset`` added to every feature), ``centered``, ``standardized`` or ``whitened``."""
    if name not in PREPROCESSING:
        raise ValueError(f"unknown preprocessing {name!r}; valid: {', '.join(PREPROCESSING)}")
    if name == "centered":
        return center(x_train, x_test)
    if name == "whitened":
        return pca_whiten(x_train, x_test)
    x_train, x_test = standardize(x_train, x_test)
    return mean_shift(x_train, x_test, offset=offset) if name == "shifted" else (x_train, x_test)
