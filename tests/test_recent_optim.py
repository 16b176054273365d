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


def test_adam_mini_entry_builds_from_the_model_with_one_second_moment_per_tensor():
    info = OPTIMIZERS["adam_mini"]
    assert info.takes_model and not info.elementwise
    model = CNN1d(1, [8, 16], 10)
    opt = make_optimizer(model, {"name": "adam_mini", "lr": 1e-2, "weight_decay": 0.01})
    assert type(opt).__name__ == "AdamMini" and len(opt.param_groups) == len(list(model.parameters()))
    x, y = torch.randn(32, 40), torch.randint(0, 10, (32,))
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    for p in model.parameters():   # first moment per weight, one second moment for the whole tensor
        state = opt.state[p]
        assert state["m"].numel() == p.numel() and state["v_mean"].numel() == 1
    w = torch.nn.Parameter(torch.ones(3, 2))   # a list of tensors: one block per tensor
    listed = make_optimizer([w], {"name": "adam_mini", "lr": 1e-2, "weight_decay": 0.0})
    w.grad = torch.ones(3, 2)
    listed.step()
    assert listed.state[w]["v_mean"].numel() == 1 and torch.allclose(w.detach(), torch.full((3, 2), 0.99))
    with pytest.raises(ValueError, match="layer_lr"):
        make_optimizer(model, {"name": "adam_mini", "lr": 1e-2, "layer_lr": {"*": 1.0}})
    with pytest.raises(ValueError, match="valid:"):
        make_optimizer(model, {"name": "adam_mini", "lr": 1e-2, "momentum": 0.9})


def test_adam_mini_on_one_tensor_is_adam_with_the_mean_second_moment():
    # One block: v_t = β2 v + (1 − β2) mean(g²), update = lr · m̂ / (sqrt(v̂) + ε) (Zhang et al. 2025, Alg. 1).
    model = torch.nn.Linear(6, 3, bias=False)
    w0 = model.weight.detach().clone()
    opt = make_optimizer(model, {"name": "adam_mini", "lr": 0.1, "weight_decay": 0.0, "betas": (0.9, 0.99)})
    g = torch.arange(18.0).reshape(3, 6) / 10
    model.weight.grad = g.clone()
    opt.step()
    m_hat, v_hat = g, (g ** 2).mean()
    expected = w0 - 0.1 * m_hat / (v_hat.sqrt() + 1e-8)
    torch.testing.assert_close(model.weight.detach(), expected, rtol=1e-5, atol=1e-6)


def test_soap_entry_builds_the_package_optimizer_and_reduces_a_matrix_loss():
    info = OPTIMIZERS["soap"]
    assert info.resolve().__name__ == "SOAP" and not info.elementwise
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 4)
    opt = make_optimizer(model, {"name": "soap", "lr": 0.1, "weight_decay": 0.01})
    assert [g["weight_decay"] for g in opt.param_groups] == [0.01, 0.0]   # no decay on the bias
    x = torch.randn(64, 8)
    y = x @ torch.randn(8, 4)
    losses = []
    for _ in range(100):
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    # The first step only initializes the preconditioner (as in Vyas et al.'s reference code).
    assert losses[1] == losses[0] and losses[-1] < 0.1 * losses[0]
