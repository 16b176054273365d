"""Chapter 7's experiment helpers: the shrink fit, exact seeding, clipping, dead units, the spike."""
import math

import numpy as np
import pandas as pd
import pytest
import torch

from accel.callbacks import DivergenceGuard
from accel.data import TensorDataModule
from accel.experiments.stability import (LN10, clip_run, clip_runs, dying_runs, farthest_from_level,
                                         grad_norms_at_init, guard_runs, guard_summary, loss_flat,
                                         rare_threshold, shrink_fit, shrink_table, times, train_deep)
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
    # the ratio spans the fitted layers (2 to 8), as the factor does: (1/r)^6 = 4^-6
    assert row["layer 2 / last"] == pytest.approx(r ** 6)


def test_shrink_table_has_one_row_per_network():
    layers = np.arange(1, 6)
    table = pd.concat([pd.DataFrame({"layer": layers, "grad_norm": 2.0 ** (layers * k), "activation": a, "seed": s})
                       for a, k in (("x", 1), ("y", -1)) for s in (0, 1)])
    out = shrink_table(table)
    assert list(out.columns) == ["activation", "seed", "shrink per layer", "R²", "layer 2 / last"]
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


def test_farthest_from_level_is_the_worst_seed_on_a_log_scale():
    assert farthest_from_level([0.9, 1.2, 1.05]) == 1.2   # |ln 1.2| = 0.182 > |ln 0.9| = 0.105
    assert farthest_from_level([0.7, 1.3]) == 0.7     # |ln 0.7| = 0.357 > |ln 1.3| = 0.262
    assert farthest_from_level([1.0]) == 1.0


def test_dying_runs_summary_reads_initialization_and_the_run():
    dm = _data()
    variants = {"plain": ("relu", 0.0), "bias": ("relu", 0.1)}
    curves, summary = dying_runs(dm, dm.x_train[:64], variants, 1, [0, 1], depth=2, width=8, lr=1e-3, every=2)
    assert {"dead_init", "mostly_active_init", "dead_mean", "dead", "train_loss", "test_acc"} <= set(summary)
    for (variant, seed), rows in curves.groupby(["variant", "seed"]):
        per_step = rows.groupby("step")[["dead", "mostly_active"]].mean()
        row = summary[(summary.variant == variant) & (summary.seed == seed)].iloc[0]
        assert row.dead_init == per_step.dead.iloc[0] and row.dead == per_step.dead.iloc[-1]
        assert row.mostly_active_init == per_step.mostly_active.iloc[0]
        assert row.dead_mean == pytest.approx(per_step.dead.mean())
    # same seed, same weights: the 0.1 bias can only raise every first-layer pre-activation
    first = curves[(curves.step == 0) & (curves.layer == 1)].set_index(["variant", "seed"]).mostly_active
    assert (first.loc["bias"].to_numpy() >= first.loc["plain"].to_numpy()).all()


def test_rare_threshold_is_a_multiple_of_the_median_norm():
    traces = pd.DataFrame({"norm_before": [1.0, 2.0, 3.0, 100.0]})
    assert rare_threshold(traces, 3.0) == pytest.approx(7.5)
    with pytest.raises(ValueError):
        rare_threshold(traces.iloc[:0])
    with pytest.raises(ValueError):
        rare_threshold(traces, 0.0)


def test_loss_flat_needs_the_last_tenth_of_epochs_to_fall_less_than_tol():
    h = lambda losses: pd.DataFrame({"epoch": range(1, len(losses) + 1), "train_loss": losses})
    falling = [2.0 - 0.1 * i for i in range(20)]
    assert not loss_flat(h(falling))                             # 0.2 nats over the last 2 epochs
    flat = [1.0] * 10 + [0.5] * 10
    assert loss_flat(h(flat), tol=0.01)
    assert not loss_flat(h([1.0, float("nan"), 0.5, 0.5]))        # a non-finite loss is not flat
    assert not loss_flat(h([1.0, 1.0]))                          # too short to tell


def test_times_in_words():
    assert times([2, 2, 2]) == "twice" and times([1]) == "once" and times([0]) == "never"
    assert times([2, 3, 2]) == "2 to 3 times" and times([4]) == "4 times"
    with pytest.raises(ValueError):
        times([])


def test_guard_runs_four_arms_share_their_start_and_apply_the_spike():
    dm = _data()
    guard = dict(factor=3.0, window=5, snapshot_every=2, lr_factor=0.25, max_retries=5)
    runs = guard_runs(dm, [0, 1, 2], 3, spike_step=6, spike=1e4, guard=guard, restore_after=2, depth=2,
                      width=8, lr=0.01, spike_length=2)
    assert list(runs.epochs.run.unique()) == ["no spike", "spike, no guard", "guard, rate kept",
                                              "guard, rate restored"]
    first = runs.steps[runs.steps.step == 0]
    assert first.groupby("seed").loss.nunique().eq(1).all()     # same seed: same initial loss in every arm
    ref = runs.steps[(runs.steps.run == "no spike") & (runs.steps.seed == 0)].set_index("step").lr
    assert ref.tolist() == pytest.approx([0.01] * len(ref))       # the reference has no spike
    bad = runs.steps[(runs.steps.run == "spike, no guard") & (runs.steps.seed == 0)].set_index("step").lr
    assert bad.loc[[6, 7]].tolist() == pytest.approx([100.0, 100.0])
    assert set(runs.events.run) <= {"guard, rate kept", "guard, rate restored"}
    kept = runs.events[runs.events.run == "guard, rate kept"]
    assert (kept.action == "rollback").all() and len(kept) >= 3  # every seed's guard acted
    summary = guard_summary(runs, spike_step=6, window=3)
    assert len(summary) == 12 and set(summary.columns) >= {"delay", "rollbacks", "raises", "final_lr", "flat"}
    assert (summary[summary.run == "guard, rate kept"].delay == 1).all()  # the loss of the next update
    with pytest.raises(ValueError, match="unknown arms"):
        guard_runs(dm, [0], 1, 3, guard=guard, arms=("no guard",))


def test_the_unguarded_arm_stops_once_its_loss_is_not_finite():
    dm = _data()
    runs = guard_runs(dm, [0, 1, 2], 4, spike_step=3, spike=1e30, guard={}, depth=2, width=8, lr=0.1,
                      spike_length=3, arms=("spike, no guard",))
    assert runs.epochs.groupby("seed").epoch.max().lt(4).all()
    assert not np.isfinite(runs.epochs.groupby("seed").train_loss.last()).any()
