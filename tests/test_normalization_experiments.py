"""accel.experiments.normalization: train/eval accuracies, re-batching, and keeping what train_seeds built."""
import pandas as pd
import pytest
import torch
from torch import nn

from accel.data import TensorDataModule
from accel.experiments.normalization import (accuracy, changed_predictions, mode_gap, train_eval_accuracies,
                                             train_seeds_kept)
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
        ("clean", "eval (running stats)"), ("clean", "train, batch 2"), ("clean", "train, batch 8"),
        ("shifted", "eval (running stats)"), ("shifted", "train, batch 16")]
    clean = table[table.inputs == "clean"].accuracy
    assert clean.nunique() == 1 and clean.iloc[0] == accuracy(ln(X), y)   # LN: every mode agrees


def test_train_seeds_kept_matches_train_seeds_and_keeps_modules():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 5, generator=g).numpy(), torch.randint(0, 2, (64,), generator=g).numpy()
    data = TensorDataModule(x[:48], y[:48], x[48:], y[48:], batch_size=16)

    def build():
        return Classifier(nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)), {"name": "sgd", "lr": 0.1})

    plain = train_seeds(build, data, 2, [3, 4], arm="a")
    kept = train_seeds_kept(build, data, 2, [3, 4], callbacks=lambda: [], arm="a")
    pd.testing.assert_frame_equal(plain, kept.history)
    assert sorted(kept.modules) == [3, 4] and kept.callbacks == {3: [], 4: []}
    w3, w4 = (kept.nets[s][0].weight for s in (3, 4))
    assert not torch.equal(w3, w4)                          # each seed its own trained network
    assert kept.nets[3] is kept.modules[3].net
