"""Run any factory optimizer on an explicit function of a few parameters.

The update rules are torch's (through :func:`accel.optim.make_optimizer`); this module
only supplies the loop: the loss at step ``t`` may depend on ``t`` (stochastic or
oscillating objectives), and every step can be observed (``on_step``) before and after
the update. Work is in float64 so that preconditioners on rank-one statistics (Shampoo)
stay finite on 2-D surfaces.
"""
from __future__ import annotations

import math
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


def lr_paths(surface: Surface, name: str, lrs: Sequence[float], steps: int,
             options: dict[str, Any] | None = None, *, bound: float = 1e6) -> pd.DataFrame:
    """:func:`path` at every learning rate of ``lrs``, all in one run: the rates' points are
    stacked and updated by one torch optimizer whose step is scaled per rate
    (:func:`accel.experiments.members.scaled_step`; the surfaces are evaluated row-wise, so the
    points do not interact). ``options`` are fixed for every rate; a ``weight_decay`` is applied
    as torch applies it. Each point's path ends where it diverged, as in :func:`path`. Rows:
    ``surface, optimizer, step, x, y, loss, lr``."""
    from .members import decoupled, scaled_step

    if not lrs or any(not lr > 0 for lr in lrs):
        raise ValueError(f"need at least one positive learning rate, got {list(lrs)}")
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an int >= 0, got {steps!r}")
    if not check_optimizer(name).elementwise:
        raise ValueError(f"optimizer {name!r} is not elementwise; run path() once per learning rate")
    options = dict(options or {})
    wd = float(options.pop("weight_decay", 0.0))
    spec = {"name": name, **options}
    k = len(lrs)
    theta = torch.nn.Parameter(torch.tensor([list(surface.start)] * k, dtype=torch.float64))
    opt = make_optimizer([theta], {**spec, "lr": 1.0})
    lr = torch.tensor(list(lrs), dtype=torch.float64)
    decay = torch.full((k,), wd, dtype=torch.float64) if wd else None
    rows: list[list[tuple[int, float, float, float]]] = [[] for _ in range(k)]
    alive = [True] * k
    for t in range(steps):
        opt.zero_grad(set_to_none=True)
        losses = surface(theta)
        losses.sum().backward()
        before, values = theta.detach().clone(), losses.detach().clone()
        scaled_step(opt, [theta], lr, decay, decoupled_decay=decoupled(spec))
        after = theta.detach()
        for i in range(k):
            if not alive[i]:
                continue
            rows[i].append((t, float(before[i, 0]), float(before[i, 1]), float(values[i])))
            if not abs(float(values[i])) < bound or not float(after[i].abs().max()) < bound:  # NaN fails both
                alive[i] = False
                rows[i].append((t + 1, float(after[i, 0]), float(after[i, 1]), float(surface(after[i]))))
        if not any(alive):
            break
    end = theta.detach()
    for i in range(k):
        if alive[i]:
            rows[i].append((len(rows[i]), float(end[i, 0]), float(end[i, 1]), float(surface(end[i]))))
    frames = [pd.DataFrame(r, columns=["step", "x", "y", "loss"]).assign(lr=float(lrs[i])) for i, r in enumerate(rows)]
    return pd.concat(frames, ignore_index=True).assign(optimizer=name, surface=surface.name)[
        ["surface", "optimizer", "step", "x", "y", "loss", "lr"]]


def best_path(surface: Surface, name: str, lrs: Sequence[float], steps: int,
              options: dict[str, Any] | None = None) -> pd.DataFrame:
    """The path (:func:`lr_paths`) with the lowest final loss over the learning rates ``lrs``, with
    an ``lr`` column: no rule is judged at one arbitrary rate. ``options`` are fixed for every
    rate (e.g. AdamW's ``weight_decay``), torch's defaults otherwise. A path that diverged (its
    final loss is not finite) never wins while another is finite; ties go to the first ``lr``."""
    if not lrs:
        raise ValueError("need at least one learning rate")
    paths = lr_paths(surface, name, lrs, steps, options)
    candidates = [paths[paths.lr == float(lr)].reset_index(drop=True) for lr in lrs]

    def final(df: pd.DataFrame) -> float:
        loss = float(df.loss.iloc[-1])
        return loss if math.isfinite(loss) else math.inf
    return min(candidates, key=final)
