"""Label noise: a known fraction of training labels replaced by a wrong class.

Mislabelled samples are the outliers that "Efficient BackProp" (LeCun et al. 1998, §4.2)
warns an emphasizing scheme about: their loss stays large however well the model
learns the task, so a sampler that favours large losses keeps presenting them.
"""
from __future__ import annotations

import numpy as np


def flip_labels(y: np.ndarray, fraction: float, num_classes: int | None = None, *, seed: int = 0
                ) -> tuple[np.ndarray, np.ndarray]:
    """``(noisy labels, flipped mask)``: exactly ``round(fraction · n)`` labels, chosen at random,
    moved to a different class drawn uniformly from the other ``num_classes − 1``.

    Deterministic given ``seed``; the input is not modified.
    """
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError("y must be a 1-D array of integer class labels")
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1], got {fraction!r}")
    classes = int(num_classes) if num_classes is not None else int(y.max()) + 1
    if classes < 2 or y.min() < 0 or y.max() >= classes:
        raise ValueError(f"labels must lie in [0, num_classes) with num_classes >= 2; got labels in "
                         f"[{y.min()}, {y.max()}] and num_classes={classes}")
    rng = np.random.default_rng(seed)
    n_flip = int(round(fraction * len(y)))
    chosen = rng.choice(len(y), size=n_flip, replace=False)
    noisy = y.copy()
    # a shift in 1..classes-1 (mod classes) gives a uniformly drawn *other* class
    noisy[chosen] = (y[chosen] + rng.integers(1, classes, size=n_flip)) % classes
    mask = np.zeros(len(y), dtype=bool)
    mask[chosen] = True
    return noisy, mask
