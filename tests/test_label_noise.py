"""Label flipping: the exact count, always to another class, deterministic."""
import numpy as np
import pytest

from accel.data.noise import flip_labels


def test_flips_exactly_the_fraction_to_other_classes():
    y = np.arange(1000) % 10
    noisy, mask = flip_labels(y, 0.2, 10, seed=3)
    assert mask.sum() == 200
    assert (noisy[mask] != y[mask]).all() and (noisy[~mask] == y[~mask]).all()
    assert set(np.unique(noisy)) <= set(range(10))
    assert (y == np.arange(1000) % 10).all()  # input untouched
    again, _ = flip_labels(y, 0.2, 10, seed=3)
    other, _ = flip_labels(y, 0.2, 10, seed=4)
    assert (again == noisy).all() and not (other == noisy).all()


def test_new_classes_are_spread_over_the_others():
    y = np.zeros(9000, dtype=np.int64)
    noisy, mask = flip_labels(y, 1.0, 10, seed=0)
    counts = np.bincount(noisy, minlength=10)
    assert counts[0] == 0 and counts[1:].min() > 850  # about 1000 each


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_bad_fraction(fraction):
    with pytest.raises(ValueError, match="fraction"):
        flip_labels(np.array([0, 1]), fraction)


def test_bad_labels():
    with pytest.raises(ValueError, match="integer class labels"):
        flip_labels(np.array([0.5, 1.0]), 0.1)
    with pytest.raises(ValueError, match="num_classes"):
        flip_labels(np.array([0, 5]), 0.1, num_classes=3)
