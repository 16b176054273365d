"""The curvature of a model's loss: Hessian-vector products and a few extreme eigenvalues.

A network's Hessian is far too large to form, but ``H v`` costs about two backward
passes (Pearlmutter's trick: differentiate ``∇L · v``; here double backward through
``torch.autograd.grad``). Power iteration on ``v ↦ H v`` gives the eigenvalue of largest
magnitude; Lanczos (SciPy's ARPACK ``eigsh`` on a ``LinearOperator``) gives the largest
algebraic eigenvalue, the "sharpness" of Cohen et al. (2021), or both ends of the
spectrum, in far fewer products.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator, eigsh
from torch import nn


WHICH = ("LA", "SA", "LM", "BE")


class HessianOperator:
    """``v ↦ ∇²L v`` for a loss already computed from ``params`` (its gradient graph is reused)."""

    def __init__(self, loss: torch.Tensor, params: Sequence[torch.Tensor]):
        self.params = [p for p in params]
        if not self.params:
            raise ValueError("no parameters to differentiate")
        self.grads = torch.autograd.grad(loss, self.params, create_graph=True)
        self.dim = sum(p.numel() for p in self.params)
        self.calls = 0

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        """``H v`` for a flat vector ``v`` (returned flat, detached)."""
        parts = torch.split(v.to(self.grads[0]), [p.numel() for p in self.params])
        outs = [t.reshape(p.shape) for t, p in zip(parts, self.params)]
        hv = torch.autograd.grad(self.grads, self.params, grad_outputs=outs, retain_graph=True)
        self.calls += 1
        return torch.cat([h.reshape(-1) for h in hv]).detach()

    def gradient(self) -> torch.Tensor:
        return torch.cat([g.reshape(-1) for g in self.grads]).detach()


def model_hessian(model: nn.Module, loss_fn: Callable, batch: tuple[torch.Tensor, torch.Tensor]) -> HessianOperator:
    """The Hessian operator of ``loss_fn(model(x), y)`` over the model's trainable parameters."""
    x, y = batch
    params = [p for p in model.parameters() if p.requires_grad]
    with torch.enable_grad():
        return HessianOperator(loss_fn(model(x), y), params)


def power_iteration(op: Callable[[torch.Tensor], torch.Tensor], dim: int, *, iters: int = 100,
                    tol: float = 1e-6, seed: int = 0, dtype: torch.dtype = torch.float64
                    ) -> tuple[float, torch.Tensor]:
    """Eigenvalue of largest magnitude of a symmetric operator, and its unit eigenvector.

    Stops when the Rayleigh quotient changes by less than ``tol`` (relative). The start
    vector comes from its own generator, so the global random state is left alone.
    """
    if iters < 1:
        raise ValueError(f"iters must be >= 1, got {iters}")
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(dim, generator=g, dtype=dtype)
    v /= v.norm()
    eig = 0.0
    for _ in range(iters):
        hv = op(v).to(dtype)
        new = float(v @ hv)
        norm = hv.norm()
        if norm == 0:
            return 0.0, v
        v = hv / norm
        if abs(new - eig) <= tol * abs(new):
            return new, v
        eig = new
    return eig, v


def lanczos(op: Callable[[torch.Tensor], torch.Tensor], dim: int, *, k: int = 1, which: str = "LA",
            tol: float = 1e-4, maxiter: int | None = None, ncv: int | None = None, seed: int = 0) -> np.ndarray:
    """``k`` extreme eigenvalues of a symmetric operator by implicitly restarted Lanczos (ARPACK).

    ``which``: ``LA`` largest algebraic (the top eigenvalue), ``SA`` smallest, ``LM``
    largest magnitude, ``BE`` both ends (k >= 2). Sorted ascending. Deterministic: the
    start vector is drawn from ``seed``.
    """
    if which not in WHICH:
        raise ValueError(f"unknown which={which!r}; valid: {', '.join(WHICH)}")
    if not 1 <= k < dim:
        raise ValueError(f"need 1 <= k < dim ({dim}), got k={k}")
    device_op = LinearOperator((dim, dim), dtype=np.float64,
                               matvec=lambda v: op(torch.from_numpy(np.ascontiguousarray(v).reshape(-1)))
                               .double().cpu().numpy())
    v0 = np.random.default_rng(seed).standard_normal(dim)
    ncv = ncv or min(dim, max(2 * k + 1, 12))
    vals = eigsh(device_op, k=k, which=which, tol=tol, maxiter=maxiter, ncv=ncv, v0=v0,
                 return_eigenvectors=False)
    return np.sort(vals)


def top_eigenvalue(model: nn.Module, loss_fn: Callable, batch: tuple[torch.Tensor, torch.Tensor], *,
                   method: str = "lanczos", tol: float = 1e-3, seed: int = 0) -> float:
    """The largest Hessian eigenvalue of ``loss_fn`` on ``batch`` (eval mode; state restored).

    Uses ``torch.autograd.grad`` only, so no ``.grad`` is written, and restores the
    model's train/eval mode.
    """
    was_training = model.training
    model.eval()
    try:
        op = model_hessian(model, loss_fn, batch)
        if method == "lanczos":
            return float(lanczos(op, op.dim, k=1, which="LA", tol=tol, seed=seed)[-1])
        if method == "power":
            return power_iteration(op, op.dim, tol=tol, seed=seed, dtype=op.grads[0].dtype)[0]
        raise ValueError(f"unknown method {method!r}; valid: lanczos, power")
    finally:
        model.train(was_training)


def full_hessian(model: nn.Module, loss_fn: Callable, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """The dense Hessian over all parameters (``torch.autograd.functional.hessian``): tiny models only."""
    x, y = batch
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    shapes = [p.shape for n, p in model.named_parameters() if p.requires_grad]
    sizes = [s.numel() for s in shapes]
    flat0 = torch.cat([p.detach().reshape(-1) for n, p in model.named_parameters() if p.requires_grad])

    def f(flat: torch.Tensor) -> torch.Tensor:
        parts = torch.split(flat, sizes)
        params = {n: t.reshape(s) for n, t, s in zip(names, parts, shapes)}
        return loss_fn(torch.func.functional_call(model, params, (x,)), y)

    return torch.autograd.functional.hessian(f, flat0)

