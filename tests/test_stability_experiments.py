"""Chapter 7's experiment helpers: the shrink fit, exact seeding, clipping, dead units, the spike."""
import math

import numpy as np
import pandas as pd
import pytest
import torch

from accel.callbacks import DivergenceGuard
from accel.data import TensorDataModule
from accel.experiments.stability import (clip_run, clip_runs, dying_runs, grad_norms_at_init, guard_demo,
                                         guard_run, shrink_fit, shrink_table, train_deep)
from accel.models import MLP
from accel.module import Classifier
from accel.seeding import seed_everything
from accel.training import fit


def _data(n=192, features=6, classes=3):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, features, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long() * (classes > 2)
    cut = n * 3 // 4
    return TensorDataModule(x[:cut].numpy(), y[:cut].numpy(), x[cut:].numpy(), y[cut:].numpy(), 32)


def test_shrink_fit_recovers_a_geometric_rate_and_ignores_layer_one():
    r = 0.25
    layers = np.arange(1, 9)
    norms = 3.0 * r ** (8 - layers)          # grows towards the output: shrinks by 1/r = 4 towards the input
    norms[0] = 1e6                           # layer 1 (raw features) is left out of the fit
    row = shrink_fit(pd.DataFrame({"layer": layers, "grad_norm": norms}))
    assert row["shrink per layer"] == pytest.approx(r)
    assert row["R²"] == pytest.approx(1.0)
    assert row["first / last"] == pytest.approx(1e6 / 3.0)


def test_shrink_table_has_one_row_per_network():
    layers = np.arange(1, 6)
    table = pd.concat([pd.DataFrame({"layer": layers, "grad_norm": 2.0 ** (layers * k), "activation": a, "seed": s})
                       for a, k in (("x", 1), ("y", -1)) for s in (0, 1)])
    out = shrink_table(table)
    assert list(out.columns) == ["activation", "seed", "shrink per layer", "R²", "first / last"]
    assert out.set_index(["activation", "seed"])["shrink per layer"].to_dict() == pytest.approx(
        {("x", 0): 0.5, ("x", 1): 0.5, ("y", 0): 2.0, ("y", 1): 2.0})   # x grows towards the output


def test_grad_norms_at_init_hidden_layers_only_and_seeded():
    dm = _data()
    x, y = dm.x_train[:64], dm.y_train[:64]
    acts = {"sigmoid": "xavier_normal", "relu": "he_normal"}
    a = grad_norms_at_init(dm, x, y, acts, depth=4, width=8, seeds=[0, 1])
    b = grad_norms_at_init(dm, x, y, acts, depth=4, width=8, seeds=[1])
    assert len(a) == 2 * 2 * 4 and a.layer.max() == 4
    pd.testing.assert_frame_equal(a[(a.activation == "relu") & (a.seed == 1)].reset_index(drop=True),
                                  b[b.activation == "relu"].reset_index(drop=True))
    assert not a[a.seed == 0].grad_norm.equals(a[a.seed == 1].grad_norm)


def test_train_deep_is_the_hand_seeded_run_bitwise():
    dm = _data()
    got = train_deep(dm, "tanh", "xavier_normal", 1, [3], depth=2, width=8)
    seed_everything(3)
    net = MLP(dm.num_features, [8, 8], dm.num_classes, activation="tanh", init="xavier_normal")
    dm.seed = 3
    want = fit(Classifier(net, {"name": "momentum", "lr": 0.05}), dm, 1)
    assert got.train_loss.tolist() == want.train_loss.tolist()
    assert set(got.activation) == {"tanh"} and set(got.seed) == {3}


def test_clip_runs_count_clipping_and_align_each_loss_with_its_gradient():
    dm = _data()
    traces, summary = clip_runs(dm, {"none": {}, "tiny": {"clip": 1e-6}, "AGC": {"agc": 0.01}}, 1, [0],
                                depth=3, width=8)
    assert summary[["method", "seed"]].values.tolist() == [["none", 0], ["tiny", 0], ["AGC", 0]]
    row = summary.set_index("method").clipped
    assert row["none"] == 0.0 and row["tiny"] == 1.0
    tiny = traces[traces.method == "tiny"]
    assert tiny.step.tolist() == list(range(math.ceil(144 / 32)))   # every update: its loss and norm on one row
    assert (tiny.norm_after < tiny.norm_before).all()
    first = traces[traces.step == 0].norm_before                    # same seed: same first gradient
    assert first.nunique() == 1
    with pytest.raises(ValueError, match="clip"):
        clip_run(dm, {"clp": 1.0}, 1, 0)


def test_dying_runs_a_negative_bias_kills_every_relu_unit():
    dm = _data()
    variants = {"dead": ("relu", -100.0), "plain": ("relu", 0.0)}
    curves, summary = dying_runs(dm, dm.x_train[:64], variants, 1, [0], depth=2, width=8, every=2)
    assert (curves[curves.variant == "dead"].dead == 1.0).all()     # no gradient reaches them: they stay dead
    final = summary.set_index("variant").dead
    assert final["dead"] == 1.0 and final["plain"] < 1.0
    assert {"step", "layer", "dead", "variant", "seed"} <= set(curves.columns)
    assert curves.step.min() == 0                                 # measured before the first update


def test_guard_run_applies_the_spike_to_the_planned_steps():
    dm = _data()
    steps, hist = guard_run(dm, 1, 0, spike_step=2, spike=10.0, depth=2, width=8, lr=0.01, spike_length=2)
    lr = steps.set_index("step").lr
    assert lr.loc[[2, 3]].tolist() == pytest.approx([0.1, 0.1])
    assert lr.drop([2, 3]).tolist() == pytest.approx([0.01] * (len(lr) - 2))
    assert len(hist) == 1


def test_guard_demo_three_arms_same_start():
    dm = _data()
    guard = DivergenceGuard(factor=3.0, window=5, snapshot_every=2, lr_factor=0.25, max_retries=5)
    steps, epochs = guard_demo(dm, guard, 1, 0, spike_step=3, spike=1.0, depth=2, width=8)
    assert list(epochs.run) == ["no spike", "spike, no guard", "spike + DivergenceGuard"]
    first = steps[steps.step == 0].loss
    assert first.nunique() == 1                                   # same seed: same initial loss in every arm
