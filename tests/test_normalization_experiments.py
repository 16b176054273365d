"""accel.experiments.normalization: learning-rate scans, per-arm tuning, train/eval accuracies,
re-batching; and the axes the CNN's norms normalize over."""
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from accel.data import TensorDataModule
from accel.experiments.normalization import (StopOnNonFinite, accuracy, best_per_arm, changed_predictions,
                                             largest_trainable_lr, last_epochs_change, lr_max_table, mode_gap,
                                             train_eval_accuracies, tune_arms)
from accel.models import CNN1d
from accel.module import Classifier
from accel.training import train_seeds


def _net(norm: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), norm, nn.ReLU(), nn.Linear(8, 3))


def _trained_bn() -> nn.Module:
    """A BatchNorm net whose running statistics differ from any test batch's."""
    net = _net(nn.BatchNorm1d(8))
    net.train()
    with torch.no_grad():
        for _ in range(20):
            net(torch.randn(32, 6) * 3 + 2)
    return net.eval()


X = torch.randn(48, 6, generator=torch.Generator().manual_seed(1))


def test_accuracy():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]])
    assert accuracy(logits, torch.tensor([0, 1, 1])) == pytest.approx(2 / 3)


def test_layernorm_is_batch_independent_batchnorm_is_not():
    ln, bn = _net(nn.LayerNorm(8)).eval(), _trained_bn()
    assert changed_predictions(ln, X, batch_size=4) == 0.0
    assert mode_gap(ln, X, batch_size=2) < 1e-5
    assert changed_predictions(bn, X, batch_size=2) > 0.0
    assert mode_gap(bn, X, batch_size=2) > 1e-2
    # a batch of everything is one batch in either order: nothing can change
    assert changed_predictions(bn, X, batch_size=len(X)) == 0.0


def test_changed_predictions_leaves_global_rng_and_model_alone():
    bn = _trained_bn()
    mean = bn[1].running_mean.clone()
    torch.manual_seed(5)
    expected = torch.rand(1)
    torch.manual_seed(5)
    changed_predictions(bn, X, batch_size=4, seed=3)
    assert torch.equal(torch.rand(1), expected)
    assert torch.equal(bn[1].running_mean, mean) and not bn.training


def test_train_eval_accuracies_rows():
    ln, y = _net(nn.LayerNorm(8)).eval(), torch.randint(0, 3, (48,), generator=torch.Generator().manual_seed(2))
    table = train_eval_accuracies(ln, X, y, 1.5 * X + 1, batch_sizes=(2, 8), shifted_batch_size=16)
    assert list(zip(table.inputs, table["mode"])) == [
        ("clean", "eval"), ("clean", "batch2"), ("clean", "batch8"), ("shifted", "eval"), ("shifted", "batch16")]
    clean = table[table.inputs == "clean"].accuracy
    assert clean.nunique() == 1 and clean.iloc[0] == accuracy(ln(X), y)   # LN: every mode agrees


# ---------------------------------------------------------------- learning-rate scans and tuning


def _blobs():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (64,), generator=g)
    x = torch.randn(64, 4, generator=g) + 3 * y[:, None].float()  # separable: trains fast
    return TensorDataModule(x[:48].numpy(), y[:48].numpy(), x[48:].numpy(), y[48:].numpy(), batch_size=16)


def _linear(lr):
    """Two stacked linear layers: at a huge rate their product overflows within a few steps."""
    return Classifier(nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2)), {"name": "sgd", "lr": lr})


def test_stop_on_non_finite_stops_a_diverging_run_at_once():
    stop = StopOnNonFinite()
    history = train_seeds(lambda: _linear(1e20), _blobs(), 5, [0], callbacks=lambda: [stop])
    assert stop.diverged and len(history) == 1 and history.step.iloc[-1] <= 3   # not 5 epochs of 3 steps


def test_largest_trainable_lr_scans_down_and_stops_at_the_first_that_trains():
    scan = largest_trainable_lr(_linear, _blobs(), 3, 0, [0.1, 1e20, 1e21, 1e-9], below=0.5, arm="x")
    assert scan.lr.tolist() == [1e21, 1e20, 0.1]                       # 1e-9 never run
    assert scan.trains.tolist() == [False, False, True] and scan.diverged.tolist()[:2] == [True, True]
    assert (scan.arm == "x").all() and scan.train_loss.isna().tolist() == [True, True, False]


def test_lr_max_table_marks_the_grid_top_as_censored_and_no_rate_as_nan():
    scans = pd.DataFrame({"norm": ["a", "a", "b", "c"], "seed": [0, 0, 0, 0], "lr": [10.0, 1.0, 10.0, 1.0],
                          "trains": [False, True, True, False]})
    table = lr_max_table(scans, top=10.0).set_index("norm")
    assert table.lr_max["a"] == 1.0 and not table.censored["a"]
    assert table.lr_max["b"] == 10.0 and table.censored["b"]
    assert np.isnan(table.lr_max["c"]) and not table.censored["c"]


def test_tune_arms_extends_each_ladder_until_its_optimum_is_interior():
    optimum = {"low": 1e-4, "mid": 1e-2, "high": 1.0}
    calls = []

    def score(arm, lr):
        calls.append((arm, lr))
        return -(np.log10(lr) - np.log10(optimum[arm])) ** 2

    trials = tune_arms(score, list(optimum), centre=1e-2, n=3, step=0.5, max_rounds=5)
    best = best_per_arm(trials).set_index("arm")
    assert best.interior.all()
    for arm, opt in optimum.items():
        assert best.lr[arm] == pytest.approx(opt)
        lrs = np.sort(trials[trials.arm == arm].lr.to_numpy())
        assert np.allclose(np.diff(np.log10(lrs)), 0.5)                  # the same resolution everywhere
    assert len(trials[trials.arm == "mid"]) == 3                          # interior at once: no extension
    assert len(trials[trials.arm == "low"]) == 7 and len(trials[trials.arm == "high"]) == 7  # 4 more each


def test_tune_arms_stops_after_max_rounds_and_reports_the_edge():
    trials = tune_arms(lambda arm, lr: lr, ["up"], centre=1.0, n=3, max_rounds=1)   # better forever upwards
    best = best_per_arm(trials)
    assert len(trials) == 4 and not best.interior.iloc[0]
    nan_best = best_per_arm(pd.DataFrame({"arm": ["a"] * 3, "lr": [1.0, 2.0, 3.0],
                                          "score": [np.nan, 0.5, np.nan]}))
    assert nan_best.lr.iloc[0] == 2.0 and nan_best.interior.iloc[0]       # a diverged run never wins


def test_last_epochs_change():
    h = pd.DataFrame({"epoch": range(1, 21), "train_loss": [2.0] * 18 + [1.1, 1.0]})
    assert last_epochs_change(h, 0.1) == pytest.approx((2.0 - 1.0) / 1.0)   # 2 of 20 epochs: from epoch 18
    assert last_epochs_change(h.iloc[:1], 0.1) != last_epochs_change(h.iloc[:1], 0.1)   # NaN: too short


# ---------------------------------------------------------------- the CNN's norms (axes, groups, pairing)

def _features(norm):
    torch.manual_seed(0)
    net = CNN1d(1, [16], 10, norm=norm, groups=4)
    layer = net.features[1]
    x = torch.randn(8, 16, 20) * 3 + 1
    return layer.train()(x)


def test_layernorm_normalizes_each_example_over_channels_and_positions():
    y = _features("ln")
    assert torch.allclose(y.mean(dim=(1, 2)), torch.zeros(8), atol=1e-5)
    assert torch.allclose(y.var(dim=(1, 2), unbiased=False), torch.ones(8), atol=1e-3)


def test_groupnorm_normalizes_each_group_of_channels_of_each_example():
    g = _features("gn").view(8, 4, 4, 20)      # (example, group, channels of the group, position)
    assert torch.allclose(g.mean(dim=(2, 3)), torch.zeros(8, 4), atol=1e-5)
    assert torch.allclose(g.var(dim=(2, 3), unbiased=False), torch.ones(8, 4), atol=1e-3)
    assert not torch.allclose(g.mean(dim=(1, 2, 3)).abs().sum(), torch.tensor(1.0))  # not batch statistics


def test_batchnorm_normalizes_each_channel_over_the_batch_and_positions():
    y = _features("bn")
    assert torch.allclose(y.mean(dim=(0, 2)), torch.zeros(16), atol=1e-5)
    assert torch.allclose(y.var(dim=(0, 2), unbiased=False), torch.ones(16), atol=1e-3)


def test_arms_with_one_seed_start_from_the_same_convolutions():
    """The chapter pairs its arms by seed: every norm and ghost size gets the same initial weights."""
    nets = []
    for norm, k in (("bn", 32), ("bn", 2), ("gn", None), ("ln", None), ("none", None)):
        torch.manual_seed(7)
        nets.append(CNN1d(1, [32, 32, 32], 10, norm=norm, groups=8, ghost_size=k))
    convs = [[m.weight for m in n.modules() if isinstance(m, nn.Conv1d)] for n in nets]
    for other in convs[1:]:
        assert all(torch.equal(a, b) for a, b in zip(convs[0], other))
