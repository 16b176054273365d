"""The same tuning protocol for every optimizer (Nado et al. 2021): ladder, knobs, fresh-seed finals."""
import pytest
import torch

from accel.experiments.equal_budget import KNOBS, tune_optimizers
from accel.models import MLP


def _problem():
    torch.manual_seed(0)
    x, y = torch.randn(256, 8), torch.randint(0, 3, (256,))
    x[:, 0] += 2 * y.float()
    return (x, y), (x[:64], y[:64]), (x[64:128], y[64:128])


def test_every_optimizer_gets_the_same_stages_and_fresh_final_seeds():
    train, tune, test = _problem()
    knobs = {"warmup_fraction": KNOBS["warmup_fraction"], "label_smoothing": (0.0, 0.1)}
    trials, finals = tune_optimizers(lambda: MLP(8, [8], 3), train, tune, test, ["sgd", "lamb"], batch=32, steps=8,
                                     tune_seed=9, seeds=[0, 1, 2], centres={"sgd": 0.1, "lamb": 0.01},
                                     options={"lamb": {"exclude_from_adaptation": True}}, n=3, max_rounds=1,
                                     knobs=knobs, train_eval=64)
    stages = trials.groupby("optimizer").stage.apply(lambda s: sorted(set(s))).to_dict()
    assert stages == {"sgd": ["label_smoothing", "learning rate", "warmup_fraction"],
                      "lamb": ["label_smoothing", "learning rate", "warmup_fraction"]}
    ladder = trials[trials.stage == "learning rate"].groupby("optimizer").lr.nunique()
    assert (ladder >= 3).all() and (ladder <= 4).all()   # three rates, at most one extension
    assert trials.score.between(0, 1).all()
    ends = finals.groupby("member").tail(1)
    assert sorted(ends.groupby("optimizer_name").seed.apply(sorted).to_dict().items()) == \
        [("lamb", [0, 1, 2]), ("sgd", [0, 1, 2])]
    assert ends.groupby("optimizer_name").lr.nunique().eq(1).all() and "test_acc" in ends
    assert set(ends.tuned_label_smoothing) <= {0.0, 0.1}


def test_bad_protocols_are_refused():
    train, tune, test = _problem()
    common = dict(batch=32, steps=4, centres={"sgd": 0.1}, n=3)
    with pytest.raises(ValueError, match="exclude the tuning seed"):
        tune_optimizers(lambda: MLP(8, [8], 3), train, tune, test, ["sgd"], tune_seed=0, seeds=[0, 1, 2], **common)
    with pytest.raises(ValueError, match="unknown knobs"):
        tune_optimizers(lambda: MLP(8, [8], 3), train, tune, test, ["sgd"], tune_seed=9, seeds=[0, 1, 2],
                        knobs={"momentum": (0.9,)}, **common)
