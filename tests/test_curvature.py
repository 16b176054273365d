"""Hessian-vector products, power iteration, Lanczos and the curvature callback vs exact Hessians."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from accel.callbacks.curvature import TopHessianEigenvalue, edge_of_stability
from accel.losses import one_hot_mse
from accel.hessian import (full_hessian, lanczos, model_hessian, power_iteration,
                             top_eigenvalue)


def tiny():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)).double()
    x = torch.randn(32, 4, dtype=torch.float64)
    y = torch.randint(0, 3, (32,))
    return model, (x, y)


def test_hvp_matches_full_hessian():
    model, batch = tiny()
    H = full_hessian(model, F.cross_entropy, batch)
    assert H.shape == (43, 43) and torch.allclose(H, H.T, atol=1e-12)
    op = model_hessian(model, F.cross_entropy, batch)
    v = torch.randn(43, dtype=torch.float64)
    assert torch.allclose(op(v), H @ v, atol=1e-10)
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("loss_fn", [F.cross_entropy, one_hot_mse])
def test_estimators_match_exact_eigenvalues(loss_fn):
    model, batch = tiny()
    eig = torch.linalg.eigvalsh(full_hessian(model, loss_fn, batch)).numpy()
    op = model_hessian(model, loss_fn, batch)
    top = lanczos(op, op.dim, k=1, which="LA", tol=1e-10)
    assert top[-1] == pytest.approx(eig[-1], rel=1e-6)
    ends = lanczos(op, op.dim, k=2, which="BE", tol=1e-10)
    assert ends == pytest.approx([eig[0], eig[-1]], rel=1e-6, abs=1e-9)
    big = eig[np.argmax(np.abs(eig))]
    value, vec = power_iteration(op, op.dim, iters=5000, tol=1e-12)
    assert value == pytest.approx(big, rel=1e-4)
    assert top_eigenvalue(model, loss_fn, batch, tol=1e-10) == pytest.approx(eig[-1], rel=1e-6)


def test_one_hot_mse_value():
    logits = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    assert float(one_hot_mse(logits, torch.tensor([0, 1]))) == pytest.approx(0.25)


def test_bad_input():
    model, batch = tiny()
    op = model_hessian(model, F.cross_entropy, batch)
    with pytest.raises(ValueError, match="LA, SA, LM, BE"):
        lanczos(op, op.dim, which="XX")
    with pytest.raises(ValueError, match="lanczos, power"):
        top_eigenvalue(model, F.cross_entropy, batch, method="qr")
    with pytest.raises(ValueError, match="every"):
        TopHessianEigenvalue(every=0)


def test_top_eigenvalue_restores_mode():
    model, batch = tiny()
    model.train()
    top_eigenvalue(model, F.cross_entropy, batch)
    assert model.training
    model.eval()
    top_eigenvalue(model, F.cross_entropy, batch)
    assert not model.training


def _train(callback):
    from accel.module import Classifier
    from accel.data import TensorDataModule
    from accel.training import make_trainer
    from accel.seeding import seed_everything

    seed_everything(0)
    x = np.random.default_rng(0).standard_normal((64, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    dm = TensorDataModule(x, y, x, y, batch_size=64, device="cpu")
    net = nn.Sequential(nn.Linear(6, 8), nn.Dropout(0.2), nn.Tanh(), nn.Linear(8, 2))
    module = Classifier(net, {"name": "momentum", "lr": 0.1})
    trainer = make_trainer(6, [callback] if callback else [], limit_val_batches=0, accelerator="cpu")
    trainer.fit(module, datamodule=dm)
    return module, (torch.from_numpy(x), torch.from_numpy(y))


def test_callback_records_and_does_not_disturb_training():
    cb = TopHessianEigenvalue(every=2)
    with_cb, batch = _train(cb)
    without, _ = _train(None)
    for a, b in zip(with_cb.parameters(), without.parameters()):
        assert torch.equal(a, b)  # same weights: no grads, RNG or mode disturbed (dropout uses the RNG)
    frame = cb.frame()
    assert list(frame.step) == [0, 2, 4, 6]
    assert np.allclose(frame.two_over_lr, 20.0) and np.allclose(frame.threshold, 38.0)
    exact = torch.linalg.eigvalsh(full_hessian(with_cb.net.eval(), F.cross_entropy, batch))[-1]
    assert frame.eigenvalue.iloc[-1] == pytest.approx(float(exact), rel=1e-3)


def test_edge_of_stability_summary():
    import pandas as pd
    f = pd.DataFrame({"step": [0, 10, 20, 30], "eigenvalue": [1.0, 9.5, 10.5, 10.0], "two_over_lr": [10.0] * 4})
    s = edge_of_stability(f)
    assert s == {"max_ratio": 1.05, "first_step": 10.0, "ratio_after": 1.0}
    assert np.isnan(edge_of_stability(f.assign(eigenvalue=1.0))["first_step"])
