"""Edge-of-stability runs: same initial network for every rate, measuring leaves training alone, summaries."""
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from accel.experiments import sharpness
from accel.experiments.sharpness import sharpening_summary, sharpness_runs


def _frames(eigenvalues, losses, lr=0.5):
    steps = np.arange(len(eigenvalues)) * 10
    sharp = pd.DataFrame({"step": steps, "eigenvalue": eigenvalues, "two_over_lr": 2 / lr})
    loss = pd.DataFrame({"step": np.arange(len(losses)) * 5, "loss": losses})
    return sharp, loss


def test_summary_counts_loss_rises_from_the_first_step_at_the_edge():
    # 2/η = 4: the ratio reaches 0.9 at step 20 (3.8/4 = 0.95); the losses from step 20 on
    # are 0.5, 0.6, 0.4, 0.45, 0.3: 2 rises in the 4 consecutive pairs. The rise before step 20 does not count.
    sharp, loss = _frames([1.0, 2.0, 3.8, 4.2, 4.0], [1.0, 1.1, 0.9, 1.0, 0.5, 0.6, 0.4, 0.45, 0.3])
    s = sharpening_summary(sharp, loss)
    assert s["first_step"] == 20 and s["max_ratio"] == pytest.approx(1.05)
    assert s["ratio_after"] == pytest.approx(1.0)
    assert s["loss_rises"] == pytest.approx(2 / 4)
    assert list(s) == ["max_ratio", "first_step", "ratio_after", "loss_rises"]


def test_summary_is_nan_when_the_edge_is_never_reached():
    sharp, loss = _frames([1.0, 1.5, 2.0], [1.0, 0.9, 1.2, 0.8])
    s = sharpening_summary(sharp, loss)
    assert s["max_ratio"] == pytest.approx(0.5)
    assert all(math.isnan(s[k]) for k in ("first_step", "ratio_after", "loss_rises"))


def test_rates_are_checked_and_sorted():
    assert sharpness.check_rates([0.2, 0.4, 0.3, 0.4]) == [0.4, 0.3, 0.2]
    for bad in ([0.4], [0.4, 0.4], [0.4, -0.1], [0.4, float("nan")]):
        with pytest.raises(ValueError, match="at least 2 distinct positive"):
            sharpness.check_rates(bad)


def _data():
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.standard_normal((48, 5)), dtype=torch.float32)
    y = torch.as_tensor((x[:, 0] > 0).long())
    return x, y


def _build():
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 2))


def test_runs_start_from_the_same_network_and_record_every_rate_and_seed():
    x, y = _data()
    sharp, loss = sharpness_runs(_build, x, y, [0.5, 0.1], [3, 4], steps=3, every=2)
    assert sorted(sharp.lr.unique()) == [0.1, 0.5] and sorted(sharp.seed.unique()) == [3, 4]
    assert list(sharp[(sharp.lr == 0.5) & (sharp.seed == 3)].step) == [0, 2, 3]  # every 2, and the end
    assert list(loss[(loss.lr == 0.5) & (loss.seed == 3)].step) == [0, 1, 2, 3]
    first = sharp[(sharp.step == 0) & (sharp.seed == 3)].set_index("lr").eigenvalue
    assert first[0.5] == first[0.1]  # seeded before build: one initial network for every rate
    other = sharp[(sharp.step == 0) & (sharp.seed == 4)].set_index("lr").eigenvalue
    assert other[0.5] != first[0.5]  # another seed, another network
    assert np.allclose(sharp.two_over_lr, 2 / sharp.lr)
    a = loss[(loss.lr == 0.5) & (loss.seed == 3)].loss.to_numpy()
    b = loss[(loss.lr == 0.1) & (loss.seed == 3)].loss.to_numpy()
    assert a[0] == b[0] and not np.array_equal(a, b)  # same start, different rates
    again, _ = sharpness_runs(_build, x, y, [0.5], [3], steps=3, every=2)
    assert np.array_equal(again.eigenvalue, sharp[(sharp.lr == 0.5) & (sharp.seed == 3)].eigenvalue)


def test_measuring_the_sharpness_does_not_change_training():
    x, y = _data()
    _, often = sharpness.full_batch_gd(_build, x, y, 0.5, 4, every=2, seed=1)
    _, rarely = sharpness.full_batch_gd(_build, x, y, 0.5, 4, every=100, seed=1)
    assert np.array_equal(often.loss, rarely.loss)


def test_gd_runs_match_a_hand_written_loop_and_the_top_eigenvalue():
    from accel.hessian import full_hessian
    from accel.losses import one_hot_mse
    from accel.seeding import seed_everything
    x, y = _data()
    sharp, loss = sharpness.full_batch_gd(_build, x, y, 0.3, 3, every=3, seed=2)
    seed_everything(2)
    net = _build()
    top0 = float(torch.linalg.eigvalsh(full_hessian(net, one_hot_mse, (x, y)))[-1])
    assert sharp.eigenvalue.iloc[0] == pytest.approx(top0, rel=1e-3)
    with torch.no_grad():
        losses = []
        for _ in range(4):
            with torch.enable_grad():
                value = one_hot_mse(net(x), y)
                grads = torch.autograd.grad(value, list(net.parameters()))
            losses.append(float(value))
            for p, g in zip(net.parameters(), grads):
                p -= 0.3 * g
    assert np.allclose(loss.loss, losses, rtol=1e-6)


def test_summaries_per_run():
    x, y = _data()
    sharp, loss = sharpness_runs(_build, x, y, [2.0, 0.01], [0, 1, 2], steps=2, every=2)
    table = sharpness.summaries(sharp, loss)
    assert len(table) == 6 and {"lr", "seed", "initial λmax", "max_ratio", "final loss"} <= set(table.columns)
    reached = sharpness.reached_all(table)
    assert set(reached) == {2.0, 0.01} and reached[0.01] is False  # a tiny rate cannot reach 2/η = 200
