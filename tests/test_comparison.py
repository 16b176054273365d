"""accel.experiments.comparison: tuning on held-out data, finals on fresh shared seeds."""
import numpy as np
import pytest
import torch

from accel.experiments.comparison import compare_optimizers, split_holdout, steps_to
from accel.experiments.members import last
from accel.models import MLP


def test_compare_optimizers_protocol():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(120, 4, generator=g)
    y = (x[:, 0] > 0).long()
    train, held_out = split_holdout(x[:100], y[:100], fraction=0.2)
    assert len(train[0]) == 80 and torch.equal(held_out[0], x[:20])
    trials, finals = compare_optimizers(lambda: MLP(4, [8], 2), train, held_out, (x[100:], y[100:]),
                                        ["adam", "sgd"], steps=8, batch_size=16, seeds=[0, 1, 2], tune_seed=7,
                                        n=3, centres={"adam": 1e-2, "sgd": 0.1}, max_rounds=2, eval_every=4)
    assert {"optimizer", "lr", "score", "round", "train_loss", "train_acc"} <= set(trials.columns)
    assert (trials.groupby("optimizer").size() >= 3).all()
    end = last(finals)
    assert sorted(end.seed.unique()) == [0, 1, 2] and len(end) == 6 and "test_acc" in end
    best = trials.loc[trials.groupby("optimizer").score.idxmax()].set_index("optimizer").lr
    assert np.allclose(end.groupby("optimizer").lr.first()[best.index], best)
    hit = steps_to(finals, "test_acc", 0.0)
    assert (hit == 4).all()
    with pytest.raises(ValueError, match="distinct"):
        compare_optimizers(lambda: MLP(4, [8], 2), train, held_out, held_out, ["adam"], steps=2, batch_size=8,
                           seeds=[0, 0], tune_seed=0)
    with pytest.raises(ValueError, match="fraction"):
        split_holdout(x, y, fraction=1.0)
