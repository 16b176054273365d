"""Optimizer-table entries of the recent methods: Muon's orthogonalized update, Schedule-Free AdamW."""
import pytest
import torch

from accel.experiments.recent import update_singular_values
from accel.models import CNN1d
from accel.optim import OPTIMIZERS, make_optimizer


def test_muon_update_of_a_matrix_is_near_orthogonal():
    # With momentum 0 the update is lr · NS5(G): Newton–Schulz drives every singular value of the
    # gradient into a band around 1 (Jordan et al. 2024's coefficients: about [0.7, 1.2]).
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(32, 64) * 0.1)
    opt = make_optimizer([w], {"name": "muon", "lr": 1.0, "momentum": 0.0, "nesterov": False})
    u, _ = torch.linalg.qr(torch.randn(32, 32))
    v, _ = torch.linalg.qr(torch.randn(64, 32))
    g = u @ torch.diag(torch.logspace(0, -1.5, 32)) @ v.T   # singular values from 1 down to 1/30
    w.grad = g.clone()
    before = w.detach().clone()
    opt.step()
    s = torch.linalg.svdvals((before - w.detach()).double())
    assert s.min() > 0.5 and s.max() < 1.3
    assert s.max() / s.min() < 2.0
    assert torch.linalg.cond(g.double()) > 25   # the gradient itself was far from orthogonal


def test_muon_on_the_cnn_orthogonalizes_hidden_convolutions_only():
    build = lambda: CNN1d(1, [8, 16], 10)
    x, y = torch.randn(64, 40), torch.randint(0, 10, (64,))
    s = update_singular_values(build, (x, y), {"name": "muon", "lr": 1.0, "momentum": 0.0, "nesterov": False},
                               batch_size=64, name="features.3.weight")
    assert len(s) == 16 and s.min() > 0.5 and s.max() < 1.3   # (16, 8, 5) seen as 16 x 40
    opt = make_optimizer(build(), {"name": "muon", "lr": 0.02})
    flags = [(g["use_muon"], [p.ndim for p in g["params"]]) for g in opt.param_groups]
    assert flags[0] == (True, [3, 3]) and flags[1][0] is False   # the head and the biases go to AdamW


def test_schedule_free_entry_builds_the_package_optimizer():
    info = OPTIMIZERS["adamw_schedulefree"]
    assert info.resolve().__module__.startswith("schedulefree") and not info.elementwise
    model = CNN1d(1, [8], 10)
    opt = make_optimizer(model, {"name": "adamw_schedulefree", "lr": 1e-2, "weight_decay": 0.1, "warmup_steps": 5})
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]   # no decay on biases
    with pytest.raises(ValueError, match="valid:"):
        make_optimizer(model, {"name": "adamw_schedulefree", "lr": 1e-2, "momentum": 0.9})


def test_schedule_free_refuses_to_step_outside_train_mode():
    w = torch.nn.Parameter(torch.ones(3))
    opt = make_optimizer([w], {"name": "adamw_schedulefree", "lr": 1e-2})
    w.grad = torch.ones(3)
    with pytest.raises(Exception, match="train mode"):
        opt.step()
    opt.train()
    for k in range(3):   # after one step x = y = z; later steps separate them
        w.grad = torch.tensor([1.0, -2.0, 0.5]) * (k + 1)
        opt.step()
    y = w.detach().clone()
    opt.eval()   # x differs from y after a step; train() restores y exactly
    assert not torch.allclose(w.detach(), y)
    opt.train()
    assert torch.allclose(w.detach(), y)
