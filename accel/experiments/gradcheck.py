"""A hand-written BatchNorm with its backward derived by hand, and what gradient checking catches.

The sources' checklist says "add gradCheck()": compare the backward pass you wrote with
finite differences before trusting a training curve (Bengio 2012, §3.1 "Gradient
checking"). The layer here is batch normalization in training mode (Ioffe & Szegedy
2015, §3, whose paper gives the backward pass): for a batch of ``n`` rows,

    μ = mean(x),  σ² = mean((x − μ)²),  x̂ = (x − μ)/√(σ² + ε),  y = γ x̂ + β,

and the chain rule through μ and σ² collapses to

    ∂L/∂x = (1/n) · γ/√(σ² + ε) · (n·g − Σ g − x̂ · Σ(g · x̂)),   g = ∂L/∂y,
    ∂L/∂γ = Σ g · x̂,   ∂L/∂β = Σ g        (sums over the batch).

:class:`BatchNormFunction` implements that backward, and, on request, one of two planted
errors (:data:`BUGS`): forgetting that μ depends on x (a large error), or differentiating
the unbiased variance (``n − 1``) instead of the one the forward used (a small one).
:func:`torch.autograd.gradcheck` compares the analytic Jacobian with central differences;
:func:`check_table` measures what it reports in float64 and float32.
"""
from __future__ import annotations

import warnings
from typing import Any, Sequence

import pandas as pd
import torch

BUGS = {
    "none": "the derivation above",
    "mean": "drops the −Σg term: treats the batch mean as a constant",
    "variance": "differentiates the unbiased variance: the x̂·Σ(g·x̂) term scaled by n/(n − 1)",
}


class BatchNormFunction(torch.autograd.Function):
    """Training-mode batch normalization over the rows of ``x`` (N, C), with a hand-written backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float,
                bug: str) -> torch.Tensor:
        mean = x.mean(0)
        var = x.var(0, unbiased=False)
        inv_std = torch.rsqrt(var + eps)
        xhat = (x - mean) * inv_std
        ctx.save_for_backward(xhat, gamma, inv_std)
        ctx.bug = bug
        return gamma * xhat + beta

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        xhat, gamma, inv_std = ctx.saved_tensors
        n = g.shape[0]
        g_xhat = g * gamma
        sum_g = g_xhat.sum(0)
        sum_gx = (g_xhat * xhat).sum(0)
        if ctx.bug == "mean":
            sum_g = torch.zeros_like(sum_g)
        elif ctx.bug == "variance":
            sum_gx = sum_gx * n / (n - 1)
        dx = inv_std / n * (n * g_xhat - sum_g - xhat * sum_gx)
        return dx, (g * xhat).sum(0), g.sum(0), None, None


def batch_norm(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-5,
               bug: str = "none") -> torch.Tensor:
    """:class:`BatchNormFunction` with its arguments checked (``bug`` one of :data:`BUGS`)."""
    if bug not in BUGS:
        raise ValueError(f"unknown bug {bug!r}; valid: {', '.join(BUGS)}")
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"batch_norm normalizes the rows of an (N, C) batch with N >= 2, got shape "
                         f"{tuple(x.shape)}")
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps!r}")
    return BatchNormFunction.apply(x, gamma, beta, eps, bug)


def make_inputs(n: int, c: int, dtype: torch.dtype, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A batch ``x`` (n, c) off-centre and unevenly scaled, and γ, β: leaves that require grad."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, generator=g, dtype=torch.float64) * torch.linspace(0.5, 3.0, c, dtype=torch.float64) + 1.0
    gamma = 1.0 + 0.5 * torch.randn(c, generator=g, dtype=torch.float64)
    beta = torch.randn(c, generator=g, dtype=torch.float64)
    return tuple(t.to(dtype).requires_grad_(True) for t in (x, gamma, beta))  # type: ignore[return-value]


def relative_error(bug: str, inputs: Sequence[torch.Tensor], *, eps: float, seed: int = 0) -> float:
    """‖g_analytic − g_numeric‖ / max(‖g_analytic‖, ‖g_numeric‖) for a random projection of y.

    The projection ``L = Σ w·y`` (``w`` random) makes every output count; the numeric
    gradient is the central difference ``(L(x + ε e_i) − L(x − ε e_i)) / 2ε`` computed in
    the inputs' dtype, as gradcheck does. All three inputs' gradients are compared at once.
    """
    gen = torch.Generator().manual_seed(seed + 1)
    w = torch.randn(inputs[0].shape, generator=gen, dtype=torch.float64).to(inputs[0].dtype)

    def loss(*args: torch.Tensor) -> torch.Tensor:
        return (batch_norm(*args, bug=bug) * w).sum()

    analytic = torch.autograd.grad(loss(*inputs), inputs)
    numeric = []
    with torch.no_grad():
        for k, t in enumerate(inputs):
            grad = torch.zeros_like(t)
            flat = grad.view(-1)
            for i in range(t.numel()):
                def shifted(delta: float) -> float:
                    args = [a.detach().clone() for a in inputs]
                    args[k].view(-1)[i] += delta
                    return float(loss(*args))
                flat[i] = (shifted(eps) - shifted(-eps)) / (2 * eps)
            numeric.append(grad)
    a = torch.cat([g.reshape(-1).double() for g in analytic])
    b = torch.cat([g.reshape(-1).double() for g in numeric])
    return float((a - b).norm() / max(a.norm(), b.norm(), torch.tensor(1e-300)))


def gradcheck_passes(bug: str, inputs: Sequence[torch.Tensor], *, eps: float, atol: float, rtol: float) -> bool:
    """:func:`torch.autograd.gradcheck` of :func:`batch_norm` (no exception: True/False).

    In float32 gradcheck warns that its inputs are not double precision; that warning is
    the point of the comparison, so it is silenced here and reported in the table instead.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*double precision.*")
        return bool(torch.autograd.gradcheck(lambda *args: batch_norm(*args, bug=bug), tuple(inputs), eps=eps,
                                             atol=atol, rtol=rtol, raise_exception=False))


GRADCHECK_DEFAULTS = {"eps": 1e-6, "atol": 1e-5, "rtol": 1e-3}  # torch.autograd.gradcheck's own


def check_table(settings: dict[str, dict[str, Any]], seeds: Sequence[int], *, n: int = 16,
                c: int = 4) -> pd.DataFrame:
    """One row per setting × bug × seed: gradcheck's pass/fail and the relative error.

    ``settings`` maps a label to ``{"dtype": torch.float64, "eps": ..., "atol": ...,
    "rtol": ...}``; every bug of :data:`BUGS` is checked on the same inputs per seed.
    """
    rows = []
    for label, s in settings.items():
        unknown = set(s) - {"dtype", "eps", "atol", "rtol"}
        if unknown or "dtype" not in s:
            raise ValueError(f"setting {label!r} needs dtype, eps, atol, rtol; got {sorted(s)}")
        opts = {**GRADCHECK_DEFAULTS, **{k: v for k, v in s.items() if k != "dtype"}}
        for seed in seeds:
            inputs = make_inputs(n, c, s["dtype"], seed)
            for bug in BUGS:
                rows.append({"setting": label, "dtype": str(s["dtype"]).replace("torch.", ""), "bug": bug,
                             "seed": seed, **opts,
                             "passed": gradcheck_passes(bug, inputs, **opts),
                             "relative_error": relative_error(bug, inputs, eps=opts["eps"], seed=seed)})
    return pd.DataFrame(rows)


def tolerance_ladder(dtype: torch.dtype, eps: float, tolerances: Sequence[float], seeds: Sequence[int], *,
                     n: int = 16, c: int = 4) -> pd.DataFrame:
    """For each tolerance (``atol = rtol = tol``, ascending) and backward: on how many inputs gradcheck passes.

    Loosening the tolerance until the correct layer stops failing is the natural reaction
    to a false alarm; the rows say what the buggy layers do at that tolerance.
    """
    tolerances = sorted(float(t) for t in tolerances)
    if not tolerances or tolerances[0] <= 0:
        raise ValueError(f"tolerances must be positive numbers, got {tolerances}")
    inputs = {s: make_inputs(n, c, dtype, s) for s in seeds}
    rows = [{"tol": tol, "bug": bug, "passed": sum(gradcheck_passes(bug, x, eps=eps, atol=tol, rtol=tol)
                                                   for x in inputs.values()), "of": len(inputs)}
            for tol in tolerances for bug in BUGS]
    return pd.DataFrame(rows)


def loosest_needed(ladder: pd.DataFrame) -> float:
    """The smallest tolerance of ``ladder`` at which the correct layer passes on every input (inf if none)."""
    ok = ladder[(ladder.bug == "none") & (ladder.passed == ladder.of)]
    return float(ok.tol.min()) if len(ok) else float("inf")


def rounding_floor(dtype: torch.dtype, eps: float, scale: float = 1.0) -> float:
    """The relative error rounding alone leaves in a central difference: ≈ u·|L| / (ε·|∂L|), u = machine epsilon.

    With |L| ≈ |∂L| ≈ ``scale``, float64 (u ≈ 1.1e-16) at ε = 1e-6 leaves ~1e-10, float32
    (u ≈ 6e-8) leaves ~0.06: the check then measures rounding, not the backward pass.
    """
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps!r}")
    return float(torch.finfo(dtype).eps / 2 * scale / eps)


__all__ = ["BUGS", "BatchNormFunction", "GRADCHECK_DEFAULTS", "batch_norm", "check_table", "gradcheck_passes",
           "loosest_needed", "make_inputs", "relative_error", "rounding_floor", "tolerance_ladder"]
