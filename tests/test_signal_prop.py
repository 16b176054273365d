"""Signal-propagation statistics per residual block: formulas, bookkeeping, the predicted shapes."""
import numpy as np
import pandas as pd
import pytest
import torch

from accel.experiments.signal_prop import (block_statistics, channel_stats, growth_per_block, signal_propagation,
                                           stage_slope)
from accel.models import build_model


def _net(norm, **kw):
    spec = {"name": "resnet1d", "widths": [16, 32], "blocks": 8, "norm": norm, **kw}
    return lambda: build_model(spec)


X = torch.randn(256, 40, generator=torch.Generator().manual_seed(0))


def test_channel_stats_are_the_mean_over_channels_of_squared_means_and_variances():
    h = torch.randn(7, 3, 5) * torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1) + torch.tensor([0.5, -1, 2]).view(1, 3, 1)
    a = h.permute(1, 0, 2).reshape(3, -1).numpy().astype(float)
    sq_mean, var = channel_stats(h)
    assert sq_mean == pytest.approx(np.mean(a.mean(1) ** 2))
    assert var == pytest.approx(np.mean(a.var(1)))
    with pytest.raises(ValueError, match="shape"):
        channel_stats(torch.randn(5))


def test_rows_follow_blocks_and_stages_and_the_model_is_left_alone():
    torch.manual_seed(0)
    net = _net("noisy_bn")()
    bn = next(m for m in net.modules() if isinstance(m, torch.nn.BatchNorm1d))
    step = next(m for m in net.modules() if hasattr(m, "step")).step.clone()
    stats = block_statistics(net, X)
    assert list(stats.block) == list(range(1, 17))
    assert list(stats.stage) == [0] * 8 + [1] * 8 and list(stats.in_stage) == list(range(1, 9)) * 2
    np.testing.assert_allclose(stats.ratio, stats.residual_var / stats.skip_var)
    assert torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean)) and net.training
    assert torch.equal(next(m for m in net.modules() if hasattr(m, "step")).step, step)


def test_identity_skip_variance_is_the_previous_blocks_output_variance():
    torch.manual_seed(1)
    stats = block_statistics(_net("bn")(), X)
    inner = stats[stats.stage == 0]
    np.testing.assert_allclose(inner.skip_var.to_numpy()[1:], inner["var"].to_numpy()[:-1], rtol=1e-6)


def test_batchnorm_branch_to_skip_ratio_falls_like_one_over_depth():
    """De & Smith 2020: Var(branch) ≈ const while Var(skip) grows linearly, so the ratio ∝ 1/l."""
    stats = signal_propagation(_net("bn"), X, seeds=[0, 1, 2])
    exponents = [stage_slope(s, "ratio", log_x=True, log_y=True) for _, s in stats.groupby("seed")]
    assert -1.3 < np.mean(exponents) < -0.7


def test_unnormalized_variance_grows_geometrically_and_scaled_ws_keeps_it_flat():
    none = signal_propagation(_net("none"), X, seeds=[0, 1])
    sws = signal_propagation(_net("sws"), X, seeds=[0, 1])
    assert min(growth_per_block(s) for _, s in none.groupby("seed")) > 1.3
    assert all(abs(growth_per_block(s) - 1) < 0.05 for _, s in sws.groupby("seed"))
    last = lambda t: t.groupby("seed").tail(1)  # noqa: E731
    assert (last(none).sq_mean / last(none)["var"]).min() > 5 * (last(sws).sq_mean / last(sws)["var"]).max()


def test_growth_and_slope_formulas_on_a_hand_made_table():
    t = pd.DataFrame(dict(block=[1, 2, 3, 4], stage=[0, 0, 1, 1], in_stage=[1, 2, 1, 2], var=[1.0, 2.0, 4.0, 8.0]))
    assert growth_per_block(t) == pytest.approx(2.0)
    assert stage_slope(t) == pytest.approx(4.0)
    assert stage_slope(t, stage=0, log_y=True) == pytest.approx(np.log(2))
    with pytest.raises(ValueError, match="at least two"):
        stage_slope(t.iloc[:3])


def test_a_network_without_residual_blocks_is_refused():
    with pytest.raises(ValueError, match="no ResidualBlock"):
        block_statistics(build_model({"name": "mlp", "in_features": 40, "hidden": [8], "out_features": 10}), X)
