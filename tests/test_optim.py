import pytest
import torch
from torch import nn

from accel.optim import NEEDS_CREATE_GRAPH, OPTIMIZERS, make_optimizer, param_groups

TORCH_OPTIMIZERS = ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta", "adam", "adamw", "radam", "nadam"]


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_builds_and_steps(name):
    net = _net()
    opt = make_optimizer(net, {"name": name, "lr": 1e-2})
    before = [p.detach().clone() for p in net.parameters()]
    for _ in range(2):  # SOAP's first step only initializes its preconditioner
        opt.zero_grad()
        net(torch.randn(16, 4)).pow(2).mean().backward(create_graph=name in NEEDS_CREATE_GRAPH)
        opt.step()
    assert any(not torch.equal(a, p) for a, p in zip(before, net.parameters()))


def test_the_torch_ones_are_torch_classes_not_copies():
    for name in TORCH_OPTIMIZERS:
        opt = make_optimizer(_net(), {"name": name, "lr": 0.1})
        assert type(opt).__module__.startswith("torch.optim")
    assert make_optimizer(_net(), {"name": "nesterov", "lr": 0.1}).defaults["nesterov"] is True
    assert make_optimizer(_net(), {"name": "momentum", "lr": 0.1}).defaults["momentum"] == 0.9


def test_biases_and_norm_weights_get_no_weight_decay():
    net = _net()
    groups = param_groups(net, 0.1)
    decayed = {id(p) for p in groups[0]["params"]}
    assert groups[0]["weight_decay"] == 0.1 and groups[1]["weight_decay"] == 0.0
    assert decayed == {id(net[0].weight), id(net[3].weight)}
    opt = make_optimizer(net, {"name": "adamw", "lr": 1e-3, "weight_decay": 0.1})
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]
    opt = make_optimizer(net, {"name": "adam", "lr": 1e-3, "weight_decay": 0.1, "exclude_from_decay": False})
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["weight_decay"] == 0.1


def test_bad_specs_raise_clear_errors():
    with pytest.raises(ValueError, match="valid: sgd, momentum"):
        make_optimizer(_net(), {"name": "adamax", "lr": 1})
    with pytest.raises(ValueError, match="no argument.*valid: lr"):
        make_optimizer(_net(), {"name": "adam", "lr": 1e-3, "beta1": 0.9})
    with pytest.raises(ValueError, match="positive"):
        make_optimizer(_net(), {"name": "sgd", "lr": -1})
