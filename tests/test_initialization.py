import numpy as np
import pandas as pd
import pytest
import torch

from accel.data import TensorDataModule
from accel.experiments.initialization import (depth_survey, effective_rank, forward_through_depth, geometric_rate,
                                              symmetry_run, unit_spread)


def test_forward_through_depth_follows_the_variance_argument():
    # linear units: var(out) = n·var(w)·var(in), so N(0, 1/n) weights keep the std at 1,
    # and N(0, 0.5/n) halve the variance each layer (std factor 1/√2)
    # (x from its own generator: forward_through_depth reseeds the global one for the weights)
    x = torch.randn(2000, 200, generator=torch.Generator().manual_seed(123))
    keep, acts = forward_through_depth(x, depth=4, width=200, activation="identity", init="normal",
                                       std=(1 / 200) ** 0.5)
    assert list(keep.layer) == [1, 2, 3, 4] and len(acts) == 4 and acts[0].shape == (2000 * 200,)
    assert keep["std"].to_numpy() == pytest.approx(1.0, rel=0.05)
    halve, _ = forward_through_depth(x, depth=4, width=200, activation="identity", init="normal",
                                     std=(0.5 / 200) ** 0.5)
    assert halve["std"].to_numpy() == pytest.approx(2.0 ** (-0.5 * np.arange(1, 5)), rel=0.05)
    big, _ = forward_through_depth(x, depth=2, width=200, activation="tanh", init="normal", std=1.0)
    assert (big["saturated"] > 0.8).all()
    relu, _ = forward_through_depth(x, depth=2, width=50, activation="relu", init="he_normal")
    assert relu["zero"].to_numpy() == pytest.approx(0.5, abs=0.05)
    with pytest.raises(ValueError, match="positive"):
        forward_through_depth(x, depth=0)


def test_forward_through_depth_is_seeded():
    x = torch.randn(50, 20)
    a, _ = forward_through_depth(x, depth=3, width=20, seed=3)
    b, _ = forward_through_depth(x, depth=3, width=20, seed=3)
    c, _ = forward_through_depth(x, depth=3, width=20, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_depth_survey_tables():
    x = torch.randn(30, 10)
    schemes = {"tiny": dict(init="normal", std=0.01), "xavier": dict(init="xavier_normal")}
    stats, samples = depth_survey(x, schemes, depth=3, width=10, seed=1, sample=40)
    assert list(stats.columns) == ["layer", "mean", "std", "saturated", "zero", "scheme"]
    assert stats.groupby("scheme").size().to_dict() == {"tiny": 3, "xavier": 3}
    assert samples.groupby(["scheme", "layer"]).size().eq(40).all() and len(samples) == 2 * 3 * 40
    # each scheme's statistics are those of forward_through_depth with the same seed
    alone, acts = forward_through_depth(x, depth=3, width=10, seed=1, init="xavier_normal")
    pd.testing.assert_frame_equal(stats[stats.scheme == "xavier"].drop(columns="scheme").reset_index(drop=True),
                                  alone)
    # subsamples are drawn from the layer's own activations, without replacement
    drawn = samples[(samples.scheme == "xavier") & (samples.layer == 2)]["activation"].to_numpy()
    assert np.isin(drawn, acts[1]).all() and len(np.unique(drawn)) == 40
    again = depth_survey(x, schemes, depth=3, width=10, seed=1, sample=40)[1]
    pd.testing.assert_frame_equal(samples, again)


def test_geometric_rate_recovers_the_factor():
    std = pd.Series(3.0 * 0.7 ** np.arange(1, 11))
    assert geometric_rate(std) == pytest.approx(0.7)
    assert geometric_rate([1.0, 1.0, 1.0]) == pytest.approx(1.0)


def test_unit_spread_and_rank():
    same = torch.ones(5, 3) * torch.tensor([1.0, -2.0, 0.5])
    assert unit_spread(same) == 0.0
    assert effective_rank(same) == 1
    w = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # mean row (0.5, 0.5), each row √0.5 from it, relative to |mean| = √0.5
    assert unit_spread(w) == pytest.approx(1.0)
    assert effective_rank(w) == 2
    assert effective_rank(torch.tensor([[1.0, 0.0], [0.0, 1e-9]])) == 1


def _tiny_digits(seed: int = 0) -> TensorDataModule:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + 2 * (x[:, 1] > 0)
    return TensorDataModule(x[:64], y[:64], x[64:], y[64:], batch_size=16, seed=seed, device="cpu")


def test_symmetry_run_constant_init_keeps_units_identical():
    data = _tiny_digits()
    const = symmetry_run(data, 2, "constant", width=8, seed=0)
    rand = symmetry_run(data, 2, "xavier_normal", width=8, seed=0)
    assert const["init"] == "constant" and const["width"] == 8
    assert const["unit spread"] < 1e-6 and const["rank"] == 1
    assert rand["unit spread"] > 0.1 and rand["rank"] > 1
    assert 0.0 <= const["train accuracy"] <= 1.0 and 0.0 <= const["test accuracy"] <= 1.0
    # same seed, same numbers
    assert symmetry_run(data, 2, "xavier_normal", width=8, seed=0) == rand
    assert symmetry_run(data, 2, "xavier_normal", width=8, seed=1)["unit spread"] != rand["unit spread"]
