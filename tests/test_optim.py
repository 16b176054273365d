import copy

import pytest
import torch
from torch import nn

from accel.optim import OPTIMIZERS, make_optimizer as _make_optimizer, needs_create_graph, param_groups

TORCH_OPTIMIZERS = ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta", "adam", "adamw", "radam", "nadam"]


def make_optimizer(model, spec):
    """The factory's optimizer, ready to step: Schedule-Free's is switched to train mode
    (in a run, accel.callbacks.ScheduleFreeMode does that; without it the step refuses)."""
    opt = _make_optimizer(model, spec)
    if callable(getattr(opt, "train", None)):
        opt.train()
    return opt


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
        net(torch.randn(16, 4)).pow(2).mean().backward(create_graph=needs_create_graph(name))
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


def test_without_weight_decay_one_group_gives_the_same_updates_as_two():
    torch.manual_seed(0)
    one, two = _net(), _net()
    two.load_state_dict(one.state_dict())
    a = make_optimizer(one, {"name": "adam", "lr": 1e-2})
    assert len(a.param_groups) == 1 and len(a.param_groups[0]["params"]) == len(list(one.parameters()))
    b = torch.optim.Adam(param_groups(two, 0.1), lr=1e-2)  # the two-group split ...
    for g in b.param_groups:
        g["weight_decay"] = 0.0  # ... without decay: what make_optimizer built before
    x = torch.randn(16, 4)
    for _ in range(5):
        for net, opt in ((one, a), (two, b)):
            opt.zero_grad()
            net(x).square().mean().backward()
            opt.step()
    for p, q in zip(one.parameters(), two.parameters()):
        assert torch.equal(p, q)  # bit for bit


def test_bad_specs_raise_clear_errors():
    with pytest.raises(ValueError, match="valid: sgd, momentum"):
        make_optimizer(_net(), {"name": "adamax", "lr": 1})
    with pytest.raises(ValueError, match="no argument.*valid: lr"):
        make_optimizer(_net(), {"name": "adam", "lr": 1e-3, "beta1": 0.9})
    with pytest.raises(ValueError, match="positive"):
        make_optimizer(_net(), {"name": "sgd", "lr": -1})


# A learning rate per optimizer at which 200 steps from (-1.5, 2) on Rosenbrock work.
ROSENBROCK_LR = {"sgd": 1e-3, "momentum": 1e-3, "nesterov": 1e-3, "adagrad": 0.1, "rmsprop": 0.01,
                 "adadelta": 1.0, "adam": 0.1, "adamw": 0.1, "radam": 0.01, "nadam": 0.1, "lars": 1e-3,
                 "lamb": 0.01, "adahessian": 1.0, "shampoo": 0.1, "soap": 0.1, "muon": 0.1,
                 "adamw_schedulefree": 0.1, "adam_mini": 0.1}


def test_every_factory_optimizer_has_a_rosenbrock_lr():
    assert set(ROSENBROCK_LR) == set(OPTIMIZERS)


def _rosenbrock(p):
    return (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_decreases_rosenbrock(name):
    p = nn.Parameter(torch.tensor([-1.5, 2.0], dtype=torch.float64))
    spec = {"name": name, "lr": ROSENBROCK_LR[name]}
    if name == "muon":  # a vector goes to Muon's AdamW branch, which has its own lr
        spec["adamw_lr"] = ROSENBROCK_LR[name]
    opt = make_optimizer([p], spec)
    start = float(_rosenbrock(p.detach()))
    for _ in range(200):
        opt.zero_grad(set_to_none=True)
        _rosenbrock(p).backward(create_graph=needs_create_graph(name))
        opt.step()
    opt.zero_grad(set_to_none=True)
    end = float(_rosenbrock(p.detach()))
    assert start == 12.5 and end < start / 2, (name, end)


def _train(net, opt, name, batches):
    for x in batches:
        opt.zero_grad(set_to_none=True)
        net(x).pow(2).mean().backward(create_graph=needs_create_graph(name))
        opt.step()
    opt.zero_grad(set_to_none=True)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_state_dict_resumes_identically(name):
    spec = {"name": name, "lr": 1e-2, "weight_decay": 1e-3}
    gen = torch.Generator().manual_seed(1)
    batches = [torch.randn(16, 4, generator=gen) for _ in range(8)]
    net = _net()
    opt = make_optimizer(net, spec)
    _train(net, opt, name, batches[:4])
    saved = copy.deepcopy((net.state_dict(), opt.state_dict()))
    # AdaHessian draws Hutchinson probes from the global generator: resume it too.
    rng = torch.get_rng_state()
    _train(net, opt, name, batches[4:])
    fresh = _net()
    fresh.load_state_dict(saved[0])
    fresh_opt = make_optimizer(fresh, spec)
    fresh_opt.load_state_dict(saved[1])
    torch.set_rng_state(rng)
    _train(fresh, fresh_opt, name, batches[4:])
    for a, b in zip(net.state_dict().values(), fresh.state_dict().values()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("spec, match", [
    ({"name": "sgd", "lr": 0.1, "momentum": 1.0}, "momentum must be a number in"),
    ({"name": "sgd", "lr": 0.1, "momentum": -0.1}, "momentum must be a number in"),
    ({"name": "adam", "lr": 1e-3, "betas": (0.9, 1.0)}, "betas must be a pair"),
    ({"name": "adam", "lr": 1e-3, "betas": 0.9}, "betas must be a pair"),
    ({"name": "adam", "lr": 1e-3, "eps": 0.0}, "eps must be a positive"),
    ({"name": "adamw", "lr": 1e-3, "weight_decay": -1e-2}, "weight_decay must be a number >= 0"),
    ({"name": "rmsprop", "lr": 1e-3, "alpha": 1.5}, "alpha must be"),
    ({"name": "adadelta", "lr": 1.0, "rho": 1.0}, "rho must be"),
    ({"name": "sgd", "lr": "0.1"}, "lr must be a positive"),
    ({"name": "sgd", "lr": float("nan")}, "lr must be a positive"),
    ({"name": "sgd", "lr": True}, "lr must be a positive"),
])
def test_out_of_range_hyperparameters_raise(spec, match):
    with pytest.raises(ValueError, match=match):
        make_optimizer(_net(), spec)


def test_valid_hyperparameters_pass_through_unchanged():
    import numpy as np
    opt = make_optimizer(_net(), {"name": "adam", "lr": np.float32(1e-3), "betas": [0.8, 0.99], "eps": 1e-6})
    assert tuple(opt.defaults["betas"]) == (0.8, 0.99) and opt.defaults["eps"] == 1e-6
    assert make_optimizer(_net(), {"name": "sgd", "lr": 0.1, "momentum": 0.0}).defaults["momentum"] == 0.0


def test_muon_on_plain_tensors_splits_matrices_from_vectors():
    w, b = nn.Parameter(torch.randn(4, 4)), nn.Parameter(torch.zeros(4))
    opt = make_optimizer([w, b], {"name": "muon", "lr": 0.02})
    assert [g["use_muon"] for g in opt.param_groups] == [True, False]


def test_lamb_paper_debias_option_passes_through_the_factory():
    net = _net()
    opt = make_optimizer(net, {"name": "lamb", "lr": 1e-2, "adam_debias": True})
    assert all(g["adam_debias"] for g in opt.param_groups)
    with pytest.raises(ValueError, match="adam_debias"):
        make_optimizer(net, {"name": "adam", "lr": 1e-2, "adam_debias": True})


def test_muon_orthogonalizes_hidden_matrices_and_a_linear_model_lone_matrix():
    from accel.optim import muon_groups
    mlp = _net()
    groups = muon_groups(mlp, 0.0)
    assert [p.shape for p in groups[0]["params"]] == [torch.Size([8, 4])]  # hidden only, not the head
    linear = nn.Linear(4, 3)
    groups = muon_groups(linear, 0.0)
    assert groups[0]["use_muon"] and groups[0]["params"][0] is linear.weight
    assert groups[1]["params"] == [linear.bias] and not groups[1]["use_muon"]
