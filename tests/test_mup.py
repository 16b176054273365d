"""µP written out (Yang et al. 2022, Tensor Programs V, Table 3, Adam) and the width-transfer protocol."""
import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from accel.experiments.width_transfer import (centres, parse_arm, shift_steps, train_at, tuned_table,
                                              width_scorer, with_base)
from accel.models.mup_mlp import WidthMLP, mup_rules


@pytest.mark.parametrize("width", [64, 256, 1024])
def test_rules_are_table_3_for_adam(width):
    base, n_in = 64, 40
    mup, sp = mup_rules(width, base, "mup", n_in), mup_rules(width, base, "sp", n_in)
    m = width / base
    # µP: input weights and biases as in SP (rate η), hidden rate η / fan_in, output variance 1 / fan_in²
    # and rate η / fan_in -- each relative to the base width, where µP is SP.
    assert mup["input"] == sp["input"] == {"var": 1 / n_in, "lr": 1.0}
    assert mup["hidden"] == {"var": 1 / width, "lr": pytest.approx(1 / m)}
    assert mup["output"]["var"] * width ** 2 == pytest.approx(base)    # ∝ 1 / fan_in²
    assert mup["output"]["lr"] * width == pytest.approx(base)          # ∝ 1 / fan_in
    assert sp["hidden"] == {"var": 1 / width, "lr": 1.0} and sp["output"] == {"var": 1 / width, "lr": 1.0}


def test_initial_weights_have_the_rules_variances():
    torch.manual_seed(0)
    net = WidthMLP(40, 512, 10, parametrization="mup", base_width=32)
    rules = mup_rules(512, 32, "mup", 40)
    for w, kind in zip(net.effective_weights(), net.kinds):
        assert float(w.detach().var()) == pytest.approx(rules[kind]["var"], rel=0.1)
    assert all(float(b.detach().abs().max()) == 0 for b in net.biases)


def test_at_the_base_width_mup_is_sp():
    x = torch.randn(16, 40)
    torch.manual_seed(3)
    a = WidthMLP(40, 32, 10, parametrization="mup", base_width=32)
    torch.manual_seed(3)
    b = WidthMLP(40, 32, 10, parametrization="sp")
    assert torch.equal(a(x), b(x))


def test_the_multiplier_form_is_adam_with_per_layer_rates():
    # W = c·V with V trained at η equals W trained at c·η (Adam is invariant to the gradient's scale).
    torch.manual_seed(0)
    net = WidthMLP(40, 128, 10, parametrization="mup", base_width=32)
    plain = [torch.nn.Parameter(w.detach().clone()) for w in net.effective_weights()]
    bias = [torch.nn.Parameter(b.detach().clone()) for b in net.biases]
    lr = 1e-2
    opt_net = torch.optim.Adam(net.parameters(), lr=lr, eps=1e-12)
    opt_plain = torch.optim.Adam([{"params": [w], "lr": lr * c} for w, c in zip(plain, net.multipliers)]
                                 + [{"params": bias, "lr": lr}], eps=1e-12)
    assert net.multipliers == [1.0, 0.25, 0.25]
    g = torch.Generator().manual_seed(1)
    for _ in range(4):
        x, y = torch.randn(32, 40, generator=g), torch.randint(0, 10, (32,), generator=g)
        h = x
        for i, (w, b) in enumerate(zip(plain, bias)):
            h = F.linear(h, w, b)
            h = torch.relu(h) if i < 2 else h
        for opt, loss in ((opt_net, F.cross_entropy(net(x), y)), (opt_plain, F.cross_entropy(h, y))):
            opt.zero_grad()
            loss.backward()
            opt.step()
    for a, b in zip(net.effective_weights(), plain):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-4, atol=1e-6)


def test_one_adam_step_moves_the_logits_by_o1_in_mup_and_by_o_width_in_sp():
    # µP's defining property (Yang et al. 2022, §5): the change of the output after an update does
    # not grow with the width; under SP with one rate it grows about linearly.
    x, y = torch.randn(64, 40), torch.randint(0, 10, (64,))
    change = {}
    for p in ("sp", "mup"):
        for width in (128, 512):
            torch.manual_seed(0)
            net = WidthMLP(40, width, 10, parametrization=p, base_width=32)
            opt = torch.optim.Adam(net.parameters(), lr=1e-3)
            before = net(x).detach()
            F.cross_entropy(net(x), y).backward()
            opt.step()
            change[p, width] = float((net(x).detach() - before).abs().mean())
    assert change["sp", 512] / change["sp", 128] > 3
    assert 0.7 < change["mup", 512] / change["mup", 128] < 1.4


def test_bad_arguments_name_the_valid_choices():
    with pytest.raises(ValueError, match="valid: sp, mup"):
        WidthMLP(40, 64, 10, parametrization="ntk")
    with pytest.raises(ValueError, match="positive int"):
        WidthMLP(40, 0, 10)
    with pytest.raises(ValueError, match="<parametrization>@<width>"):
        parse_arm("mup-64")
    with pytest.raises(ValueError, match="increasing"):
        centres([64, 32], 1e-2)


def test_arms_ladder_steps_and_the_base_copy():
    assert parse_arm("mup@128") == ("mup", 128)
    assert shift_steps(10 ** -1.5, 10 ** -2.0, 0.25) == 2.0
    assert shift_steps(1e-2, 10 ** -1.75, 0.25) == -1.0
    assert set(centres([32, 64], 0.01)) == {"sp@32", "sp@64", "mup@64"}   # µP at the base is SP
    trials = pd.DataFrame({"optimizer": ["sp@32", "sp@32", "mup@64"], "lr": [0.1, 0.2, 0.1],
                           "score": [-1.0, -2.0, -1.5]})
    both = with_base(trials, 32)
    assert (both.optimizer == "mup@32").sum() == 2
    table = tuned_table(both)
    assert {"parametrization", "width", "train_loss"} <= set(table.columns)


def test_the_scorer_trains_stacked_trials_and_scores_minus_the_training_loss():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 8, generator=g)
    y = (x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long()
    shape = dict(steps=10, warmup=2, batch_size=20, n_in=8, n_out=4, base_width=8)
    score = width_scorer((x, y), seeds=[0, 1], **shape)
    s = score([("sp@8", 1e-2), ("mup@16", 1e-2), ("sp@16", 1e3)])
    assert -math.log(4) - 0.5 < s[0] < 0 and -math.log(4) - 0.5 < s[1] < 0
    rows = train_at((x, y), [("sp@8", 1e-2), ("mup@16", 1e-2)], [0, 1], **shape)
    assert rows.groupby("trial").train_loss.mean().tolist() == pytest.approx([-s[0], -s[1]])
    assert sorted(rows.seed) == [0, 0, 1, 1] and set(rows.width) == {8, 16}
