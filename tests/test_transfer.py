"""Transfer helpers: tasks from class subsets, new heads, features, probes, arms, steps to a target."""
import numpy as np
import pandas as pd
import pytest
import torch

from accel.experiments.transfer import (Arm, adapt, features, head_name, new_head, probe_accuracy, steps_to, task,
                                        task_pair)
from accel.models import MLP


def _arrays(n=200, seed=0):
    g = np.random.default_rng(seed)
    y = np.arange(n) % 6
    x = (g.standard_normal((n, 5)) + np.eye(6)[y][:, :5] * 3).astype(np.float32)
    return x, y.astype(np.int64), x[: n // 2].copy(), y[: n // 2].copy()


def test_a_task_keeps_its_classes_renumbered():
    data = task(_arrays(), [4, 2, 5])
    assert sorted(np.unique(data.y_train.numpy())) == [0, 1, 2]
    x, y, _, _ = _arrays()
    assert len(data.x_train) == np.isin(y, [4, 2, 5]).sum()
    first = np.flatnonzero(np.isin(y, [4, 2, 5]))[0]
    assert int(data.y_train[0]) == [4, 2, 5].index(int(y[first]))
    assert len(task(_arrays(), [0, 1], train_size=10).x_train) == 10


@pytest.mark.parametrize("classes, kw, match", [([1], {}, "two distinct"), ([1, 1], {}, "two distinct"),
                                                ([1, 9], {}, "do not occur"), ([0, 1], {"train_size": 1}, "between")])
def test_bad_tasks(classes, kw, match):
    with pytest.raises(ValueError, match=match):
        task(_arrays(), classes, **kw)


def test_a_pair_shares_one_standardization():
    a, b = task_pair(_arrays(), [0, 1, 2], [3, 4, 5])
    both = torch.cat([a.x_train, b.x_train])
    torch.testing.assert_close(both.mean(0), torch.zeros(5), atol=1e-5, rtol=0)


def test_new_head_replaces_only_the_head():
    torch.manual_seed(0)
    net = MLP(5, [7], 3)
    other = new_head(net, 4)
    assert head_name(net) == "4" and other[4].out_features == 4
    torch.testing.assert_close(other[1].weight, net[1].weight)
    assert net[4].out_features == 3  # the source is untouched


def test_features_are_the_heads_input():
    torch.manual_seed(0)
    net = MLP(5, [7], 3).train()
    x = torch.randn(9, 5)
    torch.testing.assert_close(features(net, x), torch.nn.Sequential(*list(net)[:-1]).eval()(x))
    assert net.training


def test_probe_reads_separable_features():
    a, _ = task_pair(_arrays(400), [0, 1, 2], [3, 4, 5])
    torch.manual_seed(0)
    assert probe_accuracy(MLP(5, [32], 3), a) > 0.8  # random features of well-separated classes


def test_arms_freeze_scale_or_restart():
    a, b = task_pair(_arrays(), [0, 1, 2], [3, 4, 5])
    torch.manual_seed(0)
    source = {0: MLP(5, [8], 3)}
    arms = {"probe": Arm(freeze=True), "still": Arm(body=0.0), "scratch": Arm(pretrained=False),
            "ulmfit": Arm(body=1 / 2.6, ratio=2.6)}
    out = adapt(source, lambda: MLP(5, [8], 3), b, arms, 1, {"name": "sgd", "lr": 0.1})
    assert set(out.history.arm) == set(arms) and len(out.history) == len(arms)
    for arm in ("probe", "still"):
        torch.testing.assert_close(out.nets[(arm, 0)][1].weight, source[0][1].weight)
    assert not torch.equal(out.nets[("scratch", 0)][1].weight, source[0][1].weight)
    # every pre-trained arm of a seed starts from the same new head
    torch.testing.assert_close(out.nets[("still", 0)][1].weight, out.nets[("probe", 0)][1].weight)


def test_arm_rules():
    assert Arm(body=0.5, ratio=2.0).rule(["1", "4", "7"]) == {"7": 1.0, "4": 0.5, "1": 0.25}
    assert Arm(body=1.0).rule(["1", "4"]) is None
    with pytest.raises(ValueError, match=">= 0"):
        Arm(body=-1.0)
    with pytest.raises(ValueError, match="ratio"):
        Arm(ratio=0.0)
    with pytest.raises(ValueError, match="pre-trained"):
        Arm(pretrained=False, freeze=True)


def test_steps_to_a_target_with_censoring():
    history = pd.DataFrame({"arm": ["a"] * 3 + ["b"] * 3, "seed": 0, "epoch": [1, 2, 3] * 2,
                            "step": [10, 20, 30] * 2, "acc": [0.2, 0.6, 0.7, 0.1, 0.2, 0.3]})
    out = steps_to(history, "acc", 0.5).set_index("arm")
    assert out.loc["a", "steps"] == 20 and not out.loc["a", "censored"]
    assert out.loc["b", "steps"] == 30 and out.loc["b", "censored"]
    low = steps_to(history.assign(loss=1 - history.acc), "loss", 0.75, higher=False).set_index("arm")
    assert low.loc["b", "steps"] == 30 and not low.loc["b", "censored"]
