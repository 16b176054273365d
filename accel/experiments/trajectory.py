"""Run any factory optimizer on an explicit function of a few parameters.

The update rules are torch's (through :func:`accel.optim.make_optimizer`); this module
only supplies the loop: the loss at step ``t`` may depend on ``t`` (stochastic or
oscillating objectives), and every step can be observed (``on_step``) before and after
the update. Work is in float64 so that preconditioners on rank-one statistics (Shampoo)
stay finite on 2-D surfaces.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import pandas as pd
import torch

from ..optim import check_optimizer, make_optimizer, needs_create_graph
from .surfaces import Surface

LossFn = Callable[[torch.Tensor, int], torch.Tensor]
StepHook = Callable[[int, float, torch.Tensor, torch.Tensor, torch.Tensor, torch.optim.Optimizer], None]


def minimize(loss_fn: LossFn, theta0: Sequence[float] | torch.Tensor, spec: dict[str, Any], steps: int, *,
             on_step: StepHook | None = None, bound: float = 1e6) -> tuple[torch.Tensor, torch.optim.Optimizer]:
    """``steps`` updates of ``theta`` (from ``theta0``) on ``loss_fn(theta, t)``.

    ``on_step(t, loss, before, grad, after, optimizer)`` sees each step (t = 1, 2, ...).
    The run stops early once the loss or a coordinate is non-finite or beyond ``bound``
    (divergence), so the path ends where the optimizer blew up.
    """
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an int >= 0, got {steps!r}")
    check_optimizer(spec.get("name"))
    theta = torch.nn.Parameter(torch.as_tensor(theta0, dtype=torch.float64).clone())
    opt = make_optimizer([theta], spec)
    create_graph = needs_create_graph(spec["name"])
    for t in range(1, steps + 1):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(theta, t)
        loss.backward(create_graph=create_graph)
        before, grad = theta.detach().clone(), theta.grad.detach().clone()
        opt.step()
        value = float(loss.detach())
        if on_step is not None:
            on_step(t, value, before, grad, theta.detach(), opt)
        if not abs(value) < bound or not float(theta.detach().abs().max()) < bound:  # NaN fails both
            break
    opt.zero_grad(set_to_none=True)  # break create_graph's parameter <-> gradient cycle
    return theta.detach(), opt


def path(surface: Surface, spec: dict[str, Any], steps: int,
         start: Sequence[float] | None = None) -> pd.DataFrame:
    """The optimizer's path on a 2-D surface: ``optimizer, step, x, y, loss`` from step 0."""
    start = surface.start if start is None else start
    p0 = torch.as_tensor(start, dtype=torch.float64)
    rows: list[tuple[int, float, float, float]] = []

    def record(t: int, loss: float, before: torch.Tensor, grad: torch.Tensor, after: torch.Tensor,
               opt: torch.optim.Optimizer) -> None:
        x, y = before.tolist()   # the loss passed in was evaluated at ``before``: no second evaluation
        rows.append((t - 1, x, y, loss))

    end, _ = minimize(lambda p, t: surface(p), p0, spec, steps, on_step=record)
    x, y = end.tolist()
    rows.append((len(rows), x, y, float(surface(end))))
    return pd.DataFrame(rows, columns=["step", "x", "y", "loss"]).assign(
        optimizer=spec["name"], surface=surface.name)[["surface", "optimizer", "step", "x", "y", "loss"]]


def best_path(surface: Surface, name: str, lrs: Sequence[float], steps: int) -> pd.DataFrame:
    """The :func:`path` with the lowest final loss over the learning rates ``lrs`` (default
    hyperparameters otherwise), with an ``lr`` column: no rule is judged at one arbitrary rate.
    Ties go to the first ``lr``; a path ending in NaN is only kept if it comes first
    (``min``'s comparison), so put a safe learning rate first."""
    if not lrs:
        raise ValueError("need at least one learning rate")
    candidates = [path(surface, {"name": name, "lr": lr}, steps).assign(lr=lr) for lr in lrs]
    return min(candidates, key=lambda df: df.loss.iloc[-1])
