"""Per-layer learning rates: the rule's matching, the groups it builds, and the factory hook."""
import pytest
import torch
from torch import nn

from accel.ensemble import StackedEnsemble
from accel.models import MLP, CNN1d
from accel.optim import make_optimizer
from accel.optim.layerwise import factor_for, layer_factors, layer_lr_groups, layer_names, member_name
from accel.schedules import make_schedule


def _mlp():
    torch.manual_seed(0)
    return MLP(4, [8, 8], 3)  # layers 1, 4 (hidden) and 7 (head)


def test_layer_names_are_module_paths_in_order():
    assert layer_names(_mlp()) == ["1", "4", "7"]
    assert layer_names(CNN1d(1, [4, 4], 3)) == ["features.0", "features.3", "head.2"]


def test_keys_match_whole_path_components_and_the_longest_wins():
    rule = {"features": 0.1, "features.3": 0.5, "*": 2.0}
    assert factor_for("features.0", rule) == 0.1
    assert factor_for("features.3", rule) == 0.5
    assert factor_for("head.2", rule) == 2.0          # '*' covers the rest
    assert factor_for("features30", {"features": 0.1}) == 1.0  # no partial-name match; default 1
    assert factor_for("1", {"1": 3.0, "10": 5.0}) == 3.0


def test_groups_carry_lr_times_factor_and_keep_weight_decay_apart():
    net = _mlp()
    opt = make_optimizer(net, {"name": "adamw", "lr": 0.01, "weight_decay": 0.1, "layer_lr": {"7": 1.0, "*": 0.25}})
    by_param = {id(p): (g["lr"], g["weight_decay"]) for g in opt.param_groups for p in g["params"]}
    assert by_param[id(net[1].weight)] == (0.0025, 0.1)
    assert by_param[id(net[1].bias)] == (0.0025, 0.0)
    assert by_param[id(net[7].weight)] == (0.01, 0.1)
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(net.parameters()))


def test_without_layer_lr_the_factory_is_unchanged():
    net = _mlp()
    plain = make_optimizer(net, {"name": "adam", "lr": 0.01, "weight_decay": 1e-4})
    assert [len(g["params"]) for g in plain.param_groups] == [3, 3] and {g["lr"] for g in plain.param_groups} == {0.01}
    ones = make_optimizer(net, {"name": "adam", "lr": 0.01, "weight_decay": 1e-4, "layer_lr": {"*": 1.0}})
    assert [len(g["params"]) for g in ones.param_groups] == [3, 3]


def test_a_step_moves_each_layer_by_its_own_rate():
    """Plain SGD: Δw = −lr·factor·g, layer by layer."""
    net = _mlp()
    opt = make_optimizer(net, {"name": "sgd", "lr": 0.1, "layer_lr": {"1": 4.0, "4": 0.0}})
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    net(torch.randn(5, 4)).sum().backward()
    grads = {n: p.grad.clone() for n, p in net.named_parameters()}
    opt.step()
    for name, p in net.named_parameters():
        factor = {"1": 4.0, "4": 0.0, "7": 1.0}[name.split(".")[0]]
        torch.testing.assert_close(p.detach(), before[name] - 0.1 * factor * grads[name])


def test_a_schedule_scales_every_group_alike():
    net = _mlp()
    opt = make_optimizer(net, {"name": "sgd", "lr": 1.0, "layer_lr": {"1": 10.0}})
    sched = make_schedule(opt, {"name": "linear", "end_factor": 0.0}, 10)
    for _ in range(5):
        opt.step()
        sched.step()
    rates = sorted({g["lr"] for g in opt.param_groups})
    assert rates == pytest.approx([0.5, 5.0])


def test_default_lr_of_the_class_is_used_when_the_spec_gives_none():
    opt = make_optimizer(_mlp(), {"name": "adam", "layer_lr": {"1": 2.0}})
    assert sorted({g["lr"] for g in opt.param_groups}) == pytest.approx([1e-3, 2e-3])


def test_stacked_ensembles_match_rules_on_member_names():
    nets = [_mlp(), _mlp()]
    ens = StackedEnsemble(nets)
    names = [member_name(ens, n) for n, _ in ens.named_parameters()]
    assert "1.weight" in names and "7.bias" in names
    assert layer_factors(ens, {"1": 3.0}) == {"1": 3.0, "4": 1.0, "7": 1.0}
    opt = make_optimizer(ens, {"name": "sgd", "lr": 0.1, "layer_lr": {"1": 3.0}})
    stacked_first = ens.stacked_params["1__weight"]
    assert any(g["lr"] == pytest.approx(0.3) and any(p is stacked_first for p in g["params"])
               for g in opt.param_groups)


@pytest.mark.parametrize("rule, match", [
    ({}, "non-empty dict"), ([("1", 2.0)], "non-empty dict"), ({"1": -1.0}, ">= 0"),
    ({"1": float("nan")}, ">= 0"), ({"1": True}, ">= 0"), ({"": 1.0}, "module paths"),
    ({"layer9": 2.0}, "match no layer.*1, 4, 7"),
])
def test_bad_rules_are_refused_naming_the_valid_form(rule, match):
    with pytest.raises(ValueError, match=match):
        make_optimizer(_mlp(), {"name": "sgd", "lr": 0.1, "layer_lr": rule})


def test_a_list_of_tensors_has_no_layers():
    with pytest.raises(ValueError, match="needs the model"):
        make_optimizer([nn.Parameter(torch.zeros(2))], {"name": "sgd", "lr": 0.1, "layer_lr": {"*": 2.0}})


def test_groups_are_deterministic():
    net = _mlp()
    rule = {"1": 2.0, "7": 0.5}
    a = layer_lr_groups(net, [{"params": list(net.parameters()), "weight_decay": 0.0}], rule, 0.1)
    b = layer_lr_groups(net, [{"params": list(net.parameters()), "weight_decay": 0.0}], rule, 0.1)
    assert [[id(p) for p in g["params"]] for g in a] == [[id(p) for p in g["params"]] for g in b]
    assert [g["lr_factor"] for g in a] == [2.0, 1.0, 0.5]
