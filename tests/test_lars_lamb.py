"""Pin pytorch_optimizer's LARS and Lamb to the papers (You et al. 2017; You et al. 2020).

LARS (You et al. 2017, Algorithm 1), per layer l with trust coefficient η, weight decay β,
global rate γ_t and momentum m:
    λ_l = η ‖w_l‖ / (‖∇L(w_l)‖ + β ‖w_l‖)
    v ← m v + γ_t λ_l (∇L(w_l) + β w_l);   w_l ← w_l − v
LAMB (You et al. 2020, Algorithm 2), per layer:
    m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²;  m̂ = m/(1−β1^t);  v̂ = v/(1−β2^t)
    r = m̂ / (√v̂ + ε);   w ← w − η_t φ(‖w‖) / ‖r + λw‖ · (r + λw)
Where the library differs from these, a test below states the difference exactly.
"""
import copy
import io
import math

import pytest
import torch
from pytorch_optimizer import LARS, Lamb
from torch import nn

from accel.optim import make_optimizer

FOREACH = [False, True]  # pytorch_optimizer has a per-parameter and a batched (foreach) path


@pytest.fixture(autouse=True, scope="module")
def _float64():
    """Exact comparisons need float64; restored for the modules that run after this one."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 7), nn.BatchNorm1d(7), nn.ReLU(), nn.Linear(7, 3)).double()


def _set_grads(net: nn.Module, seed: int = 1, scale: float = 1.0) -> None:
    g = torch.Generator().manual_seed(seed)
    for p in net.parameters():
        p.grad = scale * torch.randn(p.shape, generator=g, dtype=p.dtype)


def _snapshot(net):
    return [p.detach().clone() for p in net.parameters()], [p.grad.detach().clone() for p in net.parameters()]


# ---------------------------------------------------------------- LARS

def test_lars_defaults_are_the_papers():
    d = LARS(_net().parameters()).defaults
    assert d["trust_coefficient"] == 1e-3      # η = 0.001 (You et al. 2017)
    assert d["momentum"] == 0.9 and d["dampening"] == 0.0 and d["nesterov"] is False
    assert d["weight_decay"] == 0.0


@pytest.mark.parametrize("foreach", FOREACH)
@pytest.mark.parametrize("lr,eta", [(0.1, 1e-3), (2.0, 0.02)])
def test_lars_update_norm_over_weight_norm_is_lr_times_trust(foreach, lr, eta):
    net = _net()
    _set_grads(net)
    w0, g0 = _snapshot(net)
    LARS(net.parameters(), lr=lr, momentum=0.0, weight_decay=0.0, trust_coefficient=eta, foreach=foreach).step()
    for w, g, p in zip(w0, g0, net.parameters()):
        delta = p.detach() - w
        if w.ndim > 1:
            # ‖Δw‖/‖w‖ = γη whatever the gradient's scale, and Δw points along −∇L
            assert float(delta.norm() / w.norm()) == pytest.approx(lr * eta, rel=1e-12)
            expected = -lr * eta * w.norm() / g.norm() * g
            torch.testing.assert_close(delta, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("foreach", FOREACH)
def test_lars_trust_ratio_with_weight_decay_is_the_papers_eq_6(foreach):
    lr, eta, beta = 0.5, 1e-3, 0.05
    net = _net()
    _set_grads(net)
    w0, g0 = _snapshot(net)
    LARS(net.parameters(), lr=lr, momentum=0.0, weight_decay=beta, trust_coefficient=eta, foreach=foreach).step()
    for w, g, p in zip(w0, g0, net.parameters()):
        if w.ndim > 1:
            local = eta * w.norm() / (g.norm() + beta * w.norm())
            torch.testing.assert_close(p.detach(), w - lr * local * (g + beta * w), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("foreach", FOREACH)
def test_lars_vectors_get_plain_sgd_steps(foreach):
    """Biases and norm parameters (ndim <= 1): no trust ratio and no weight decay, even in a
    group with weight decay; with momentum they are plain momentum SGD."""
    lr = 0.3
    net = _net()
    _set_grads(net)
    w0, g0 = _snapshot(net)
    LARS(net.parameters(), lr=lr, momentum=0.0, weight_decay=0.1, foreach=foreach).step()
    vectors = [(w, g, p) for w, g, p in zip(w0, g0, net.parameters()) if w.ndim <= 1]
    assert len(vectors) == 4  # two biases, BatchNorm's weight and bias
    for w, g, p in vectors:
        torch.testing.assert_close(p.detach(), w - lr * g, rtol=1e-12, atol=1e-15)
    # with momentum: the same as torch.optim.SGD
    net2, ref = _net(), _net()
    opt = LARS(net2.parameters(), lr=lr, momentum=0.9, foreach=foreach)
    sgd = torch.optim.SGD(ref.parameters(), lr=lr, momentum=0.9)
    for seed in (1, 2, 3):
        _set_grads(net2, seed), _set_grads(ref, seed)
        opt.step(), sgd.step()
    for p, q in zip(net2.parameters(), ref.parameters()):
        if p.ndim <= 1:
            torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("foreach", FOREACH)
def test_lars_momentum_keeps_lr_outside_the_buffer_unlike_algorithm_1(foreach):
    """Where the library differs: it keeps torch.optim.SGD's convention
    b ← m b + λ(g + βw); w ← w − γ_t b, while Algorithm 1 puts γ_t inside the buffer,
    v ← m v + γ_t λ(g + βw); w ← w − v. Identical for a constant γ; with a schedule
    (warm-up, decay) the library scales past momentum by today's γ_t."""
    eta, m, lrs = 1e-3, 0.9, [0.5, 2.0]
    net = _net()
    opt = LARS(net.parameters(), lr=lrs[0], momentum=m, trust_coefficient=eta, foreach=foreach)
    w = net[0].weight.detach().clone()
    b = torch.zeros_like(w)
    v = torch.zeros_like(w)
    w_lib, w_paper = w.clone(), w.clone()
    for t, lr in enumerate(lrs):
        _set_grads(net, seed=10 + t)
        g = net[0].weight.grad.detach().clone()
        for group in opt.param_groups:
            group["lr"] = lr
        opt.step()
        local_lib = eta * w_lib.norm() / g.norm()
        b = m * b + local_lib * g
        w_lib = w_lib - lr * b
        local_paper = eta * w_paper.norm() / g.norm()
        v = m * v + lr * local_paper * g
        w_paper = w_paper - v
    torch.testing.assert_close(net[0].weight.detach(), w_lib, rtol=1e-12, atol=1e-15)
    assert not torch.allclose(net[0].weight.detach(), w_paper, rtol=1e-6, atol=0)


def test_lars_zero_weights_fall_back_to_plain_sgd():
    p = nn.Parameter(torch.zeros(3, 2))
    p.grad = torch.ones(3, 2)
    LARS([p], lr=0.1, momentum=0.0).step()
    torch.testing.assert_close(p.detach(), torch.full((3, 2), -0.1))


def test_factory_lars_keeps_vectors_out_of_weight_decay_and_adaptation():
    net = _net()
    opt = make_optimizer(net, {"name": "lars", "lr": 0.2, "momentum": 0.0, "weight_decay": 0.01})
    assert type(opt) is LARS and [g["weight_decay"] for g in opt.param_groups] == [0.01, 0.0]
    _set_grads(net)
    w0, g0 = _snapshot(net)
    opt.step()
    for w, g, p in zip(w0, g0, net.parameters()):
        if w.ndim <= 1:
            torch.testing.assert_close(p.detach(), w - 0.2 * g, rtol=1e-12, atol=1e-15)
        else:
            ratio = 0.2 * 1e-3 * (g + 0.01 * w).norm() / (g.norm() + 0.01 * w.norm())
            assert float((p.detach() - w).norm() / w.norm()) == pytest.approx(float(ratio), rel=1e-12)


# ---------------------------------------------------------------- state dicts

@pytest.mark.parametrize("name,spec", [("lars", {"momentum": 0.9, "weight_decay": 1e-2}),
                                       ("lamb", {"weight_decay": 1e-2})])
def test_state_dict_round_trips(name, spec):
    net = _net()
    opt = make_optimizer(net, {"name": name, "lr": 0.05, **spec})
    for seed in (1, 2, 3):
        _set_grads(net, seed)
        opt.step()
    clone = copy.deepcopy(net)
    restored = make_optimizer(clone, {"name": name, "lr": 0.05, **spec})
    buffer = io.BytesIO()  # through serialization, as a checkpoint does (a live state_dict
    torch.save(opt.state_dict(), buffer)  # would share its tensors with ``opt``)
    buffer.seek(0)
    restored.load_state_dict(torch.load(buffer))
    assert restored.state_dict()["param_groups"] == opt.state_dict()["param_groups"]
    for seed in (4, 5):
        _set_grads(net, seed), _set_grads(clone, seed)
        opt.step(), restored.step()
    for p, q in zip(net.parameters(), clone.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


# ---------------------------------------------------------------- LAMB

def lamb_reference(w: torch.Tensor, grads: list[torch.Tensor], lr: float, wd: float, *, betas=(0.9, 0.999),
                   eps: float = 0.0, bias_correction: bool = True, step_debias: bool = False,
                   phi_max: float = 10.0) -> torch.Tensor:
    """Algorithm 2 of You et al. 2020 (φ(z) = min(z, phi_max)); ``bias_correction=False`` drops
    m̂, v̂ (uses m, v); ``step_debias`` multiplies the step by 1/(1−β1^t)."""
    b1, b2 = betas
    m, v = torch.zeros_like(w), torch.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mh, vh = (m / (1 - b1 ** t), v / (1 - b2 ** t)) if bias_correction else (m, v)
        u = mh / (vh.sqrt() + eps) + wd * w
        step = lr / (1 - b1 ** t) if step_debias else lr
        w = w - step * min(float(w.norm()), phi_max) / u.norm() * u
    return w


def _lamb_run(w0, grads, foreach, **kw):
    p = nn.Parameter(w0.clone())
    opt = Lamb([p], foreach=foreach, **kw)
    for g in grads:
        p.grad = g.clone()
        opt.step()
    return p.detach()


def test_lamb_hand_computed_step():
    """One step on w = [3, 4], g = [1, −2], η = 0.01, λ = 0.1, ε = 0:
    m̂ = g, v̂ = g², r = sign(g) = [1, −1]; r + λw = [1.3, −0.6], ‖·‖ = √2.05;
    φ(‖w‖) = 5, so w' = w − 0.01·5/√2.05·[1.3, −0.6] = [2.954602, 4.020953]."""
    w, g = torch.tensor([[3.0, 4.0]]), torch.tensor([[1.0, -2.0]])
    expected = torch.tensor([[3 - 0.05 * 1.3 / math.sqrt(2.05), 4 + 0.05 * 0.6 / math.sqrt(2.05)]])
    torch.testing.assert_close(expected, torch.tensor([[2.954602, 4.020953]]), rtol=0, atol=1e-6)
    torch.testing.assert_close(lamb_reference(w, [g], lr=0.01, wd=0.1), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("foreach", FOREACH)
def test_lamb_matches_algorithm_2_without_weight_decay(foreach):
    """With λ = 0 the trust ratio cancels any per-step scalar on r, so Lamb with
    ``adam_debias=True`` (step = lr) equals Algorithm 2 although it never forms m̂, v̂."""
    torch.manual_seed(0)
    w0 = torch.randn(4, 3)
    grads = [torch.randn(4, 3) for _ in range(4)]
    got = _lamb_run(w0, grads, foreach, lr=0.01, weight_decay=0.0, eps=0.0, adam_debias=True)
    torch.testing.assert_close(got, lamb_reference(w0, grads, lr=0.01, wd=0.0), rtol=1e-12, atol=1e-14)
    w, g = torch.tensor([[3.0, 4.0]]), torch.tensor([[1.0, -2.0]])
    one = _lamb_run(w, [g], foreach, lr=0.01, eps=0.0, adam_debias=True)
    assert float((one - w).norm()) == pytest.approx(0.01 * 5, rel=1e-12)  # ‖Δw‖ = η φ(‖w‖)


@pytest.mark.parametrize("foreach", FOREACH)
def test_lamb_default_differs_from_algorithm_2(foreach):
    """Where pytorch_optimizer's default Lamb differs (all pinned exactly):
    1. no bias correction inside r (m/(√v+ε), "v3 of the paper without bias correction");
    2. instead the step is lr/(1−β1^t): 10× Algorithm 2's at t = 1 (pass adam_debias=True);
    3. weight decay is decoupled (w ← w(1−ηλ) before the step, weight_decouple=True), not
       λw inside the trust ratio;
    4. ε = 1e-6 by default and also added to the trust ratio's denominator, φ caps ‖w‖ at 10."""
    d = Lamb([nn.Parameter(torch.ones(2, 2))]).defaults
    assert d["eps"] == 1e-6 and d["weight_decouple"] is True and d["grad_averaging"] is True
    assert d["max_grad_norm"] == 1.0 and d["betas"] == (0.9, 0.999) and Lamb.clamp == 10.0
    torch.manual_seed(1)
    w0 = torch.randn(4, 3)
    grads = [torch.randn(4, 3) for _ in range(3)]
    # 2: the default's first step is 1/(1−β1) = 10 times the paper's
    w, g = torch.tensor([[3.0, 4.0]]), torch.tensor([[1.0, -2.0]])
    first = _lamb_run(w, [g], foreach, lr=0.01, eps=0.0)
    assert float((first - w).norm()) == pytest.approx(10 * 0.01 * 5, rel=1e-12)
    got = _lamb_run(w0, grads, foreach, lr=0.01, eps=0.0)
    torch.testing.assert_close(got, lamb_reference(w0, grads, lr=0.01, wd=0.0, step_debias=True),
                               rtol=1e-12, atol=1e-14)
    # 1: with λ > 0 the missing bias correction changes r's weight against λw
    coupled = _lamb_run(w0, grads, foreach, lr=0.01, weight_decay=0.1, weight_decouple=False, eps=0.0,
                        adam_debias=True)
    torch.testing.assert_close(coupled, lamb_reference(w0, grads, lr=0.01, wd=0.1, bias_correction=False),
                               rtol=1e-12, atol=1e-14)
    assert not torch.allclose(coupled, lamb_reference(w0, grads, lr=0.01, wd=0.1), rtol=1e-6, atol=0)
    # 3: decoupled decay shrinks w first, then takes the trust-ratio step from the shrunk w
    lr, wd = 0.01, 0.1
    dec = _lamb_run(w, [g], foreach, lr=lr, weight_decay=wd, eps=0.0, adam_debias=True)
    shrunk = w * (1 - lr * wd)
    torch.testing.assert_close(dec, shrunk - lr * shrunk.norm() * g.sign() / math.sqrt(2), rtol=1e-12, atol=1e-14)
    # 4: φ(‖w‖) = min(‖w‖, 10)
    big = torch.tensor([[12.0, 16.0]])  # ‖w‖ = 20
    step = _lamb_run(big, [g], foreach, lr=0.01, eps=0.0, adam_debias=True) - big
    assert float(step.norm()) == pytest.approx(0.01 * 10, rel=1e-12)


@pytest.mark.parametrize("foreach", FOREACH)
def test_lamb_max_grad_norm_is_inert_by_default_and_averaging_is_the_papers(foreach):
    """``max_grad_norm=1.0`` only acts with ``pre_norm=True`` (off by default), so the
    default does not clip; ``grad_averaging=True`` is the paper's m ← β1 m + (1−β1) g."""
    torch.manual_seed(2)
    w0 = torch.randn(4, 3)
    grads = [100 * torch.randn(4, 3) for _ in range(2)]
    a = _lamb_run(w0, grads, foreach, lr=0.01, max_grad_norm=1.0)
    b = _lamb_run(w0, grads, foreach, lr=0.01, max_grad_norm=0.0)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    p = nn.Parameter(w0.clone())
    opt = Lamb([p], lr=0.01, foreach=foreach)
    p.grad = grads[0].clone()
    opt.step()
    torch.testing.assert_close(opt.state[p]["exp_avg"], 0.1 * grads[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("foreach", FOREACH)
def test_lamb_adapts_vectors_too(foreach):
    """Unlike pytorch_optimizer's LARS, Lamb applies the trust ratio to every tensor, biases
    and norm weights included (the factory only keeps them out of weight decay); a zero
    tensor (a fresh bias) gets trust ratio 1, i.e. a plain Adam-direction step."""
    b = torch.tensor([3.0, 4.0])
    g = torch.tensor([1.0, -2.0])
    step = _lamb_run(b, [g], foreach, lr=0.01, eps=0.0, adam_debias=True) - b
    assert float(step.norm()) == pytest.approx(0.01 * 5, rel=1e-12)
    zero = _lamb_run(torch.zeros(2), [g], foreach, lr=0.01, eps=0.0, adam_debias=True)
    # no bias correction: m/√v = (1−β1)/√(1−β2)·sign(g) = 3.16·sign(g) at t = 1 (Adam's step: sign(g))
    torch.testing.assert_close(zero, -0.01 * (0.1 / math.sqrt(0.001)) * g.sign(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("foreach", FOREACH)
def test_lamb_can_exclude_vectors_from_layer_adaptation(foreach):
    """``exclude_from_adaptation=True`` (You et al. 2020 for BERT): biases and norm parameters get
    trust ratio 1 (the step lr·r of the library's r, see test_lamb_adapts_vectors_too), weight
    matrices keep lr·φ(‖w‖)·r/‖r‖."""
    net, ref = _net(), _net()
    opt = make_optimizer(net, {"name": "lamb", "lr": 0.01, "eps": 1e-12, "adam_debias": True,
                               "exclude_from_adaptation": True, "foreach": foreach})
    assert [g.get("adam", False) for g in opt.param_groups] == [False, True]
    plain = make_optimizer(ref, {"name": "lamb", "lr": 0.01, "eps": 1e-12, "adam_debias": True, "foreach": foreach})
    _set_grads(net), _set_grads(ref)
    w0, g0 = _snapshot(net)
    opt.step(), plain.step()
    for w, g, p, q in zip(w0, g0, net.parameters(), ref.parameters()):
        if w.ndim <= 1:   # the library's r = m/√v (no bias correction) at t = 1: (1−β1)/√(1−β2)·sign(g)
            torch.testing.assert_close(p.detach(), w - 0.01 * (0.1 / math.sqrt(0.001)) * g.sign(),
                                       rtol=1e-9, atol=1e-10)
        else:             # weights: unchanged by the option
            torch.testing.assert_close(p.detach(), q.detach(), rtol=0, atol=0)
            assert float((p.detach() - w).norm()) == pytest.approx(0.01 * min(float(w.norm()), 10.0), rel=1e-9)


def test_exclude_from_adaptation_is_refused_for_rules_without_a_switch():
    with pytest.raises(ValueError, match="exclude_from_adaptation applies to .*lamb.*not 'adam'"):
        make_optimizer(_net(), {"name": "adam", "lr": 0.01, "exclude_from_adaptation": True})
