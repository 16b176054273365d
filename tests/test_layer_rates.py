"""Per-layer curvature against the dense Hessian, the rule built from it, and the tuning summary."""
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from accel.experiments.layer_rates import FULL, best_scales, curvature_rule, grid_runs, layer_curvatures
from accel.hessian import full_hessian
from accel.models import MLP
from accel import TensorDataModule


def _net_and_batch():
    torch.manual_seed(0)
    net = MLP(3, [4], 2, activation="sigmoid")
    x, y = torch.randn(20, 3), torch.randint(0, 2, (20,))
    return net, (x, y)


def test_block_and_full_eigenvalues_match_the_dense_hessian():
    net, batch = _net_and_batch()
    table = layer_curvatures(net, F.cross_entropy, batch, tol=1e-8).set_index("layer")
    h = full_hessian(net, F.cross_entropy, batch).double()
    sizes = [p.numel() for p in net.parameters()]  # 1.weight, 1.bias, 4.weight, 4.bias
    first = sizes[0] + sizes[1]
    blocks = {"1": h[:first, :first], "4": h[first:, first:]}
    for layer, block in blocks.items():
        assert table.loc[layer, "curvature"] == pytest.approx(float(torch.linalg.eigvalsh(block)[-1]), rel=1e-5)
    assert table.loc[FULL, "curvature"] == pytest.approx(float(torch.linalg.eigvalsh(h)[-1]), rel=1e-5)
    assert table.depth.tolist() == [1, 2, 0]


def test_the_rule_is_one_over_the_geometric_mean():
    survey = pd.DataFrame({"layer": ["1", "4", FULL] * 2, "seed": [0, 0, 0, 1, 1, 1],
                           "curvature": [1e-2, 1.0, 2.0, 1e-4, 4.0, 8.0]})
    rule, full = curvature_rule(survey)
    assert rule == pytest.approx({"1": 1e3, "4": 0.5})
    assert full == pytest.approx(4.0)
    with pytest.raises(ValueError, match="λ > 0"):
        curvature_rule(survey.assign(curvature=-1.0))


def test_best_scales_and_interior():
    final = pd.DataFrame({"arm": ["a"] * 3 + ["b"] * 3, "c": [1, 2, 4] * 2, "seed": 0,
                          "train_loss": [2.0, 1.0, 1.5, 3.0, 2.0, np.nan]})
    out = best_scales(final).set_index("arm")
    assert out.loc["a", "c"] == 2 and out.loc["a", "interior"]
    assert out.loc["b", "c"] == 2  # NaN is skipped by the mean ...
    worst = best_scales(final.assign(train_loss=[2.0, 1.0, 1.5, 3.0, 2.0, np.nan]), worst=0.5).set_index("arm")
    assert worst.loc["b", "c"] == 4 and not worst.loc["b", "interior"]  # ... unless it stands for a value


def test_grid_runs_label_every_run():
    g = np.random.default_rng(0)
    x = g.standard_normal((40, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    data = TensorDataModule(x, y, x, y, batch_size=20)
    arms = {"global": lambda c: {"name": "sgd", "lr": c}, "per layer": lambda c: {"name": "sgd", "lr": c,
                                                                                 "layer_lr": {"1": 2.0}}}
    out = grid_runs(lambda: MLP(3, [4], 2), data, 1, [0, 1, 2], arms, {"global": [0.1], "per layer": [0.1, 0.2]},
                    ensemble=False)
    assert len(out) == 3 * 3 and set(out.c) == {0.1, 0.2}
    with pytest.raises(ValueError, match="same arms"):
        grid_runs(lambda: MLP(3, [4], 2), data, 1, [0], arms, {"global": [0.1]})
