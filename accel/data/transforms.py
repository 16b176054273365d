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
