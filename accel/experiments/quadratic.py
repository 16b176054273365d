"""Quadratics with a chosen spectrum, and iteration counters for methods that minimize them.

``f(w) = ½ wᵀ H w`` with ``H = Q diag(λ) Qᵀ``: the eigenvalues are set exactly, so the
condition number κ = λmax/λmin is known, and an optional random rotation ``Q`` decides
whether the ill-conditioning is aligned with the coordinate axes (where a diagonal
preconditioner can undo it) or not. The minimizer is ``w* = 0`` with ``f* = 0``.

The rates used below are the classical ones (Nocedal & Wright 2006, §3.3; Polyak 1964):
gradient descent with the step ``2/(λmax+λmin)`` contracts the error by
``(κ-1)/(κ+1)`` per step, heavy-ball momentum with Polyak's parameters by about
``(√κ-1)/(√κ+1)``, and Newton's method solves a quadratic in one step.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

SPACINGS = ("log", "linear")


@dataclass(frozen=True)
class Quadratic:
    """``f(w) = ½ wᵀ H w`` in float64, with ``H = rotation · diag(eigenvalues) · rotationᵀ``."""

    eigenvalues: torch.Tensor
    rotation: torch.Tensor

    @property
    def hessian(self) -> torch.Tensor:
        q = self.rotation
        return (q * self.eigenvalues) @ q.T

    @property
    def dim(self) -> int:
        return len(self.eigenvalues)

    @property
    def lmin(self) -> float:
        return float(self.eigenvalues.min())

    @property
    def lmax(self) -> float:
        return float(self.eigenvalues.max())

    @property
    def kappa(self) -> float:
        return self.lmax / self.lmin

    def loss(self, w: torch.Tensor) -> torch.Tensor:
        return 0.5 * w @ (self.hessian @ w)

    def grad(self, w: torch.Tensor) -> torch.Tensor:
        return self.hessian @ w


def random_rotation(dim: int, seed: int = 0) -> torch.Tensor:
    """A Haar-random orthogonal matrix (QR of a Gaussian matrix with the signs fixed)."""
    g = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


def make_quadratic(kappa: float, dim: int = 2, *, lmin: float = 1.0, spacing: str = "log",
                   rotate: bool = False, seed: int = 0) -> Quadratic:
    """A quadratic whose Hessian has eigenvalues from ``lmin`` to ``kappa·lmin`` exactly.

    ``spacing`` places the ``dim`` eigenvalues evenly on a log or linear scale (both ends
    always included); ``rotate`` turns the eigenbasis by a random rotation.
    """
    if spacing not in SPACINGS:
        raise ValueError(f"unknown spacing {spacing!r}; valid: {', '.join(SPACINGS)}")
    if not kappa >= 1:
        raise ValueError(f"kappa must be >= 1, got {kappa}")
    if dim < 1 or lmin <= 0:
        raise ValueError(f"need dim >= 1 and lmin > 0, got dim={dim}, lmin={lmin}")
    if dim == 1 and kappa != 1:
        raise ValueError("a 1-d quadratic has kappa = 1")
    if spacing == "log":
        eig = lmin * torch.logspace(0, math.log10(kappa), dim, dtype=torch.float64)
    else:
        eig = torch.linspace(lmin, lmin * kappa, dim, dtype=torch.float64)
    eig[0], eig[-1] = lmin, lmin * kappa  # exact ends, whatever logspace rounds to
    rotation = random_rotation(dim, seed) if rotate else torch.eye(dim, dtype=torch.float64)
    return Quadratic(eig, rotation)


def condition_number(matrix: torch.Tensor | np.ndarray) -> float:
    """λmax/λmin of a symmetric positive-definite matrix (inf if it is singular)."""
    eig = torch.linalg.eigvalsh(torch.as_tensor(matrix, dtype=torch.float64))
    return float(eig[-1] / eig[0]) if eig[0] > 0 else float("inf")


def optimal_gd_step(lmin: float, lmax: float) -> float:
    """The fixed step ``2/(λmax+λmin)`` that minimizes GD's worst-case contraction."""
    return 2.0 / (lmax + lmin)


def gd_rate(kappa: float) -> float:
    """GD's contraction factor ``(κ-1)/(κ+1)`` per step with the optimal fixed step."""
    return (kappa - 1.0) / (kappa + 1.0)


def gd_iterations(kappa: float, tol: float) -> int:
    """Steps for GD with the optimal step to shrink the error of the slowest mode by ``tol``.

    ``ceil(log tol / log((κ-1)/(κ+1)))`` ≈ ``(κ/2)·log(1/tol)``: linear in κ. One step when κ=1.
    """
    rate = gd_rate(kappa)
    return 1 if rate <= 0 else math.ceil(math.log(tol) / math.log(rate) - 1e-9)


def heavy_ball_parameters(lmin: float, lmax: float) -> tuple[float, float]:
    """Polyak's (1964) optimal step and momentum for a quadratic with spectrum [λmin, λmax].

    ``α = 4/(√λmax+√λmin)²`` and ``β = ((√κ-1)/(√κ+1))²``. PyTorch's SGD with momentum
    (``v ← βv + g``, ``w ← w − α v``) is exactly Polyak's heavy ball with these values.
    """
    a, b = math.sqrt(lmax), math.sqrt(lmin)
    return 4.0 / (a + b) ** 2, ((a - b) / (a + b)) ** 2


def jacobi_preconditioner(hessian: torch.Tensor) -> torch.Tensor:
    """``P = diag(H)⁻¹``: the diagonal approximation of Newton's method."""
    return torch.diag(1.0 / torch.diagonal(hessian))


def preconditioned_kappa(hessian: torch.Tensor, preconditioner: torch.Tensor) -> float:
    """κ(P^½ H P^½), the condition number that governs GD on ``w ← w − α P ∇f``."""
    eig, vec = torch.linalg.eigh(preconditioner.to(torch.float64))
    root = (vec * eig.clamp_min(0).sqrt()) @ vec.T
    return condition_number(root @ hessian.to(torch.float64) @ root)


@dataclass
class Trace:
    """How an iteration went: steps taken, whether the tolerance was met, the path."""

    iterations: int
    converged: bool
    errors: list[float] = field(default_factory=list)
    path: np.ndarray | None = None


def iterate(q: Quadratic, lr: float, *, momentum: float = 0.0, preconditioner: torch.Tensor | None = None,
            w0: torch.Tensor | None = None, tol: float = 1e-6, max_iter: int = 100_000,
            record: bool = False) -> Trace:
    """Minimize ``q`` with ``torch.optim.SGD`` (momentum = heavy ball) on ``P ∇f``; count steps.

    A preconditioner ``P`` replaces the gradient by ``P ∇f`` before the optimizer's step,
    so ``P = H⁻¹`` with ``lr = 1`` is Newton's method and ``P = diag(H)⁻¹`` is Jacobi.
    Stops when ``‖w − w*‖ ≤ tol · ‖w0 − w*‖``; ``w0`` defaults to the all-ones vector in
    the eigenbasis (every mode excited equally).
    """
    if lr <= 0 or not 0 <= momentum < 1 or tol <= 0 or max_iter < 1:
        raise ValueError(f"need lr > 0, 0 <= momentum < 1, tol > 0, max_iter >= 1; got "
                         f"lr={lr}, momentum={momentum}, tol={tol}, max_iter={max_iter}")
    H = q.hessian
    start = q.rotation @ torch.ones(q.dim, dtype=torch.float64) if w0 is None else w0.to(torch.float64)
    w = nn.Parameter(start.clone())
    opt = torch.optim.SGD([w], lr=lr, momentum=momentum)
    e0 = float(start.norm())
    errors, path = [1.0], [start.numpy().copy()] if record else None
    k = 0
    with torch.no_grad():
        while errors[-1] > tol and k < max_iter:
            g = H @ w
            w.grad = g if preconditioner is None else preconditioner @ g
            opt.step()
            k += 1
            errors.append(float(w.norm()) / e0)
            if path is not None:
                path.append(w.detach().numpy().copy())
    return Trace(k, errors[-1] <= tol, errors, np.array(path) if path is not None else None)


def method_settings(q: Quadratic, method: str) -> dict:
    """``lr``/``momentum``/``preconditioner`` for GD, heavy ball, Newton or Jacobi on ``q``.

    Each method gets its best fixed parameters for this spectrum (for Jacobi: the optimal
    GD step of the preconditioned problem P^½ H P^½).
    """
    H = q.hessian
    if method == "gd":
        return {"lr": optimal_gd_step(q.lmin, q.lmax)}
    if method == "heavy_ball":
        lr, mom = heavy_ball_parameters(q.lmin, q.lmax)
        return {"lr": lr, "momentum": mom}
    if method == "newton":
        return {"lr": 1.0, "preconditioner": torch.linalg.inv(H)}
    if method == "jacobi":
        P = jacobi_preconditioner(H)
        eig = torch.linalg.eigvals(P @ H).real  # same spectrum as P^½ H P^½
        return {"lr": optimal_gd_step(float(eig.min()), float(eig.max())), "preconditioner": P}
    raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")


METHODS = ("gd", "heavy_ball", "newton", "jacobi")


def count_iterations(q: Quadratic, method: str, *, tol: float = 1e-6, max_iter: int = 100_000,
                     record: bool = False) -> Trace:
    """:func:`iterate` with :func:`method_settings` for ``method``."""
    return iterate(q, tol=tol, max_iter=max_iter, record=record, **method_settings(q, method))


def iteration_counts(kappas: Sequence[float], tol: float, dim: int = 10,
                     methods: Sequence[str] = ("gd", "heavy_ball", "newton")) -> pd.DataFrame:
    """Iterations each method needs on a ``dim``-d axis-aligned quadratic, per condition number.

    One row per (κ, method): ``iterations`` and ``converged``. Each run may take ten times
    GD's predicted count (plus 10), so a method slower than GD shows as not converged
    rather than running forever. The scaling law of experiment 1 is read off this table.
    """
    rows = []
    for kappa in kappas:
        q = make_quadratic(float(kappa), dim=dim)
        for method in methods:
            trace = count_iterations(q, method, tol=tol, max_iter=10 * gd_iterations(kappa, tol) + 10)
            rows.append({"kappa": kappa, "method": method, "iterations": trace.iterations,
                         "converged": trace.converged})
    return pd.DataFrame(rows)


PRECONDITIONERS = {"none (GD)": "gd", "Jacobi diag(H)⁻¹": "jacobi", "Newton H⁻¹": "newton"}


def preconditioning_table(kappa: float, dim: int, tol: float, seed: int = 0) -> pd.DataFrame:
    """κ(P½HP½) and iterations of no, Jacobi and Newton preconditioning, axis-aligned and rotated.

    The same spectrum is used twice, once in the coordinate axes and once after a random
    rotation (``seed``): a diagonal preconditioner can undo the first, not the second
    (LeCun et al. 1998, §5; Nocedal & Wright 2006). Each method runs with its best fixed
    step (:func:`method_settings`); the preconditioner of plain GD is the identity.
    """
    rows = []
    for rotated in (False, True):
        q = make_quadratic(kappa, dim=dim, rotate=rotated, seed=seed)
        for name, method in PRECONDITIONERS.items():
            P = method_settings(q, method).get("preconditioner", torch.eye(dim, dtype=torch.float64))
            trace = count_iterations(q, method, tol=tol)
            rows.append({"quadratic": "rotated" if rotated else "axis-aligned", "preconditioner": name,
                         "κ(P½HP½)": preconditioned_kappa(q.hessian, P), "iterations": trace.iterations})
    return pd.DataFrame(rows)


def loglog_slope(x: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope of log y against log x (the exponent of a power law)."""
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])


@dataclass(frozen=True)
class LeastSquares:
    """Linear least squares ``½·mean‖x W − y‖²`` whose Hessian (per output column) is ``H`` exactly.

    The inputs are ``X = √n · U diag(√λ) Qᵀ`` with ``U`` orthonormal columns, so
    ``XᵀX/n = H``: a one-layer linear "network" that *is* the quadratic ``q``.
    """

    x: torch.Tensor
    y: torch.Tensor
    quadratic: Quadratic

    def model(self, seed: int = 0, dtype: torch.dtype = torch.float32) -> nn.Linear:
        torch.manual_seed(seed)
        return nn.Linear(self.x.shape[1], self.y.shape[1], bias=False).to(dtype)

    def loss(self, model: nn.Module) -> torch.Tensor:
        x = self.x.to(next(model.parameters()).dtype)
        return 0.5 * ((model(x) - self.y.to(x.dtype)) ** 2).sum(1).mean()


def least_squares(q: Quadratic, outputs: int = 8, samples: int | None = None, seed: int = 0) -> LeastSquares:
    """The least-squares problem of ``q`` with a random teacher ``W*`` of ``outputs`` columns."""
    n = samples or 4 * q.dim
    if n < q.dim:
        raise ValueError(f"need samples >= dim ({q.dim}), got {n}")
    g = torch.Generator().manual_seed(seed)
    u, _ = torch.linalg.qr(torch.randn(n, q.dim, generator=g, dtype=torch.float64))
    x = math.sqrt(n) * (u * q.eigenvalues.sqrt()) @ q.rotation.T
    w_star = torch.randn(q.dim, outputs, generator=g, dtype=torch.float64) / math.sqrt(q.dim)
    return LeastSquares(x, x @ w_star, q)


def least_squares_problem(kappa: float, dim: int = 32, outputs: int = 8, *, rotate: bool = False
                          ) -> Callable[[int], tuple[nn.Linear, Callable[[nn.Module], torch.Tensor]]]:
    """``seed -> (model, loss)`` for :mod:`accel.experiments.races`: the least-squares problem of a
    ``dim``-d quadratic with condition number ``kappa`` (eigenvalues 1 … κ, the same for every
    seed), its rotation, teacher and initial weights drawn from ``seed``."""
    def problem(seed: int) -> tuple[nn.Linear, Callable[[nn.Module], torch.Tensor]]:
        ls = least_squares(make_quadratic(kappa, dim=dim, rotate=rotate, seed=seed), outputs=outputs, seed=seed)
        return ls.model(seed), ls.loss
    return problem
