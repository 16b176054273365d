"""Two-dimensional test functions for watching optimizers move (torch, differentiable).

Each surface maps a tensor ``p`` of shape ``(2,)`` (or ``(..., 2)`` for plotting grids)
to the loss, and knows its minimum where one exists, a start point that shows the
surface's difficulty, and a plotting window. Classic choices: the ill-conditioned
quadratic and Rosenbrock's valley (Nocedal & Wright 2006), the saddle x² − y², and a
plateau that ends in a cliff (Goodfellow et al. 2016, §8.2).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch


@dataclass(frozen=True)
class Surface:
    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    minimum: tuple[float, float] | None   # None: unbounded below (the saddle)
    start: tuple[float, float]
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    description: str = ""

    def __call__(self, p: torch.Tensor) -> torch.Tensor:
        if p.shape[-1] != 2:
            raise ValueError(f"a surface takes points of shape (..., 2), got {tuple(p.shape)}")
        return self.fn(p)

    def grid(self, n: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``X, Y, Z`` over the plotting window, for contour plots."""
        xs = torch.linspace(*self.xlim, n, dtype=torch.float64)
        ys = torch.linspace(*self.ylim, n, dtype=torch.float64)
        X, Y = torch.meshgrid(xs, ys, indexing="xy")
        Z = self(torch.stack([X, Y], -1))
        return X.numpy(), Y.numpy(), Z.numpy()


def quadratic(kappa: float = 20.0) -> Surface:
    """f = ½(x² + κ y²): Hessian diag(1, κ), condition number κ; minimum at the origin."""
    if kappa < 1:
        raise ValueError(f"kappa must be >= 1, got {kappa}")
    return Surface(f"quadratic (κ={kappa:g})", lambda p: 0.5 * (p[..., 0] ** 2 + kappa * p[..., 1] ** 2),
                   (0.0, 0.0), (-4.0, 1.0), (-4.5, 1.5), (-1.5, 1.5),
                   f"ill-conditioned quadratic, condition number {kappa:g}")


def rosenbrock(a: float = 1.0, b: float = 100.0) -> Surface:
    """f = (a − x)² + b (y − x²)²: a curved, narrow valley; minimum at (a, a²)."""
    return Surface("Rosenbrock", lambda p: (a - p[..., 0]) ** 2 + b * (p[..., 1] - p[..., 0] ** 2) ** 2,
                   (a, a * a), (-1.5, 2.0), (-2.0, 2.0), (-1.0, 3.0), "Rosenbrock's banana valley")


def saddle() -> Surface:
    """f = x² − y²: a saddle at the origin, no minimum; the start sits almost on the ridge."""
    return Surface("saddle x² − y²", lambda p: p[..., 0] ** 2 - p[..., 1] ** 2, None, (1.5, 1e-3),
                   (-2.0, 2.0), (-2.0, 2.0), "saddle point, unbounded below")


def plateau_cliff(height: float = 2.0, sharpness: float = 20.0, edge: float = 1.5) -> Surface:
    """A flat plateau (x > edge) that drops down a cliff into a Gaussian bowl.

    f = 1 − exp(−(x² + y²)) + h·σ(s(x − edge)). Far from the origin both terms are
    saturated, so gradients nearly vanish (the plateau); at x = edge the loss falls by
    h over a width ~1/s, a gradient up to h·s/4 (the cliff). The minimum is at the
    origin up to the cliff term's tail, h·s·σ(−s·edge) ≈ 4e-12 for the defaults.
    """
    def fn(p: torch.Tensor) -> torch.Tensor:
        x, y = p[..., 0], p[..., 1]
        return 1 - torch.exp(-(x ** 2 + y ** 2)) + height * torch.sigmoid(sharpness * (x - edge))
    return Surface("plateau and cliff", fn, (0.0, 0.0), (3.0, 0.5), (-1.5, 3.5), (-1.5, 1.5),
                   "a plateau that ends in a cliff")


SURFACES: dict[str, Callable[[], Surface]] = {
    "quadratic": quadratic, "rosenbrock": rosenbrock, "saddle": saddle, "plateau_cliff": plateau_cliff,
}


def make_surface(name: str, **kwargs: float) -> Surface:
    if name not in SURFACES:
        raise ValueError(f"unknown surface {name!r}; valid: {', '.join(SURFACES)}")
    return SURFACES[name](**kwargs)


def linear(slope: torch.Tensor | float) -> Callable[[torch.Tensor], torch.Tensor]:
    """f = g·θ: a constant slope, the setting of the momentum terminal-velocity argument."""
    g = torch.as_tensor(slope, dtype=torch.float64)
    return lambda p: (g * p).sum()


def plateau_outcome(loss: float, start_loss: float = 3.0) -> str:
    """Where a run on :func:`plateau_cliff` (default shape) ended, read from its final loss.

    The loss is ≈ 3 on the plateau (the bowl term ≈ 1 plus the cliff's height 2), ≈ 1
    below the cliff but outside the bowl, and near 0 in the bowl: a sentence the prose
    can quote, so that it never says more than the number.
    """
    if not math.isfinite(loss):
        return "diverged"
    if loss > start_loss - 0.5:
        return f"stayed on the plateau (loss {loss:.2f})"
    if loss < 0.1:
        return f"reached the bowl (loss {loss:.2g})"
    if 0.5 < loss < 1.5:
        return f"went down the cliff but ended outside the bowl (loss {loss:.2f})"
    return f"left the plateau and ended at loss {loss:.2f}"
