"""Edge-of-stability runs: same initial network for every rate, and the summary of one run."""
import math

import numpy as np
import pandas as pd
import pytest
from torch import nn

from accel.data import TensorDataModule
from accel.experiments.sharpness import sharpening_summary, sharpness_runs


def _frames(eigenvalues, losses, lr=0.5):
    steps = np.arange(len(eigenvalues)) * 10
    sharp = pd.DataFrame({"step": steps, "eigenvalue": eigenvalues, "two_over_lr": 2 / lr})
    loss = pd.DataFrame({"step": np.arange(len(losses)) * 5, "loss": losses})
    return sharp, loss


def test_summary_counts_loss_rises_from_the_first_step_at_the_edge():
    # 2/η = 4: the ratio reaches 0.9 at step 20 (3.8/4 = 0.95); the losses from step 20 on
    # are 0.5, 0.6, 0.4, 0.45, 0.3: 2 rises, divided by the 5 losses (the chapter's formula; see the
    # docstring). The rise before step 20 does not count.
    sharp, loss = _frames([1.0, 2.0, 3.8, 4.2, 4.0], [1.0, 1.1, 0.9, 1.0, 0.5, 0.6, 0.4, 0.45, 0.3])
    s = sharpening_summary(sharp, loss)
    assert s["first_step"] == 20 and s["max_ratio"] == pytest.approx(1.05)
    assert s["ratio_after"] == pytest.approx(1.0)
    assert s["loss_rises"] == pytest.approx(2 / 5)
    assert list(s) == ["max_ratio", "first_step", "ratio_after", "loss_rises"]


def test_summary_is_nan_when_the_edge_is_never_reached():
    sharp, loss = _frames([1.0, 1.5, 2.0], [1.0, 0.9, 1.2, 0.8])
    s = sharpening_summary(sharp, loss)
    assert s["max_ratio"] == pytest.approx(0.5)
    assert all(math.isnan(s[k]) for k in ("first_step", "ratio_after", "loss_rises"))


def test_runs_start_from_the_same_network_and_record_every_rate():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((48, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    dm = TensorDataModule(x, y, x, y, batch_size=48, device="cpu")
    build = lambda: nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 2))
    sharp, loss = sharpness_runs(build, dm, [0.5, 0.1], steps=4, every=2, seed=3)
    assert sorted(sharp.lr.unique()) == [0.1, 0.5] and list(sharp[sharp.lr == 0.5].step) == [0, 2, 4]
    first = sharp[sharp.step == 0].set_index("lr").eigenvalue
    assert first[0.5] == first[0.1]  # seeded before build: one initial network for every rate
    assert np.allclose(sharp.two_over_lr, 2 / sharp.lr)
    a, b = loss[loss.lr == 0.5].loss.to_numpy(), loss[loss.lr == 0.1].loss.to_numpy()
    assert a[0] == b[0] and not np.array_equal(a, b)  # same start, different rates
    again, _ = sharpness_runs(build, dm, [0.5], steps=4, every=2, seed=3)
    assert np.array_equal(again.eigenvalue, sharp[sharp.lr == 0.5].eigenvalue)
