import numpy as np
import pandas as pd
import pytest
import torch

from accel.data import TensorDataModule
from accel.experiments.initialization import (INPUTS, WEIGHTS, depth_inputs, depth_survey, effective_rank,
                                              forward_through_depth, geometric_rate, stream_seed, symmetry_run,
                                              unit_spread)


def test_forward_through_depth_follows_the_variance_argument():
    # linear units: var(out) = n·var(w)·var(in), so N(0, 1/n) weights keep the std at 1,
    # and N(0, 0.5/n) halve the variance each layer (std factor 1/√2)
    x = depth_inputs(2000, 200, seed=123)
    keep, acts = forward_through_depth(x, depth=4, width=200, activation="identity", init="normal",
                                       std=(1 / 200) ** 0.5)
    assert list(keep.layer) == [1, 2, 3, 4] and len(acts) == 4 and acts[0].shape == (2000 * 200,)
    assert keep["std"].to_numpy() == pytest.approx(1.0, rel=0.05)
    halve, _ = forward_through_depth(x, depth=4, width=200, activation="identity", init="normal",
                                     std=(0.5 / 200) ** 0.5)
    assert halve["std"].to_numpy() == pytest.approx(2.0 ** (-0.5 * np.arange(1, 5)), rel=0.05)
    big, _ = forward_through_depth(x, depth=2, width=200, activation="tanh", init="normal", std=1.0)
    assert (big["saturated"] > 0.8).all()
    # a ReLU zeroes half its inputs (layer 2's units have random offsets: average over many)
    relu, _ = forward_through_depth(x, depth=2, width=200, activation="relu", init="he_normal")
    assert relu["zero"].to_numpy() == pytest.approx(0.5, abs=0.04)
    with pytest.raises(ValueError, match="positive"):
        forward_through_depth(x, depth=0)


def test_forward_through_depth_is_seeded():
    x = torch.randn(50, 20)
    a, _ = forward_through_depth(x, depth=3, width=20, seed=3)
    b, _ = forward_through_depth(x, depth=3, width=20, seed=3)
    c, _ = forward_through_depth(x, depth=3, width=20, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_inputs_and_weights_come_from_separate_streams():
    # the bug this guards against: torch.manual_seed(s) inside the forward pass and
    # torch.manual_seed(s); torch.randn(...) for the inputs give the same numbers, so the
    # first layer's weights were a rescaled copy of the inputs
    assert stream_seed(0, WEIGHTS) != stream_seed(0, INPUTS) != stream_seed(1, INPUTS)
    assert stream_seed(5, INPUTS) == stream_seed(5, INPUTS) and 0 <= stream_seed(5, INPUTS) < 2**63
    x = depth_inputs(40, 30, seed=0)
    torch.manual_seed(stream_seed(0, WEIGHTS))
    lin = torch.nn.Linear(30, 30, bias=False)
    torch.nn.init.normal_(lin.weight, 0.0, 1.0)  # what forward_through_depth draws for init="normal", std=1
    w = lin.weight.detach().ravel()
    for start in range(0, 40 * 30 - len(w) + 1, len(w)):
        chunk = x.ravel()[start:start + len(w)]
        assert abs(float(torch.corrcoef(torch.stack([chunk, w]))[0, 1])) < 0.2
    # the weights really are that draw: identity layer, N(0, 1) weights, the output is x @ w.T
    _, acts = forward_through_depth(x, depth=1, width=30, activation="identity", init="normal", std=1.0)
    np.testing.assert_allclose(acts[0], (x @ lin.weight.detach().T).numpy().ravel(), rtol=1e-5, atol=1e-5)
    # and the caller's global generator is left alone
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    forward_through_depth(x, depth=2, width=5)
    assert torch.equal(torch.rand(3), expected)
    with pytest.raises(ValueError, match="non-negative"):
        stream_seed(-1, INPUTS)


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
