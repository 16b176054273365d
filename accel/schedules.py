"""Learning-rate schedules as data, built on `torch.optim.lr_scheduler`.

A spec is ``{"name": ..., **arguments}`` with lengths in optimizer steps (use
:func:`epochs_to_steps`); ``warmup_steps`` in any spec prepends a linear warm-up
(Goyal et al. 2017) through ``SequentialLR``. Schedulers are stepped once per
optimizer step.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch.optim import lr_scheduler as sched

Builder = Callable[..., sched.LRScheduler]


def _constant(opt: torch.optim.Optimizer, total_steps: int) -> sched.LRScheduler:
    return sched.ConstantLR(opt, factor=1.0, total_iters=0)


def _step(opt, total_steps: int, step_size: int, gamma: float = 0.1):
    return sched.StepLR(opt, step_size=step_size, gamma=gamma)


def _multistep(opt, total_steps: int, milestones: list[int], gamma: float = 0.1):
    return sched.MultiStepLR(opt, milestones=milestones, gamma=gamma)


def _exponential(opt, total_steps: int, gamma: float):
    return sched.ExponentialLR(opt, gamma=gamma)


def _linear(opt, total_steps: int, end_factor: float = 0.0):
    return sched.LinearLR(opt, start_factor=1.0, end_factor=end_factor, total_iters=total_steps)


def _piecewise(opt, total_steps: int, hold: float = 0.2, decay: float = 0.6, end_factor: float = 0.0):
    """Constant for ``hold`` of the run, linear decay over ``decay``, then constant."""
    n_hold = int(round(hold * total_steps))
    n_decay = max(1, int(round(decay * total_steps)))
    return sched.SequentialLR(opt, [
        sched.ConstantLR(opt, factor=1.0, total_iters=n_hold),
        sched.LinearLR(opt, start_factor=1.0, end_factor=end_factor, total_iters=n_decay),
        sched.ConstantLR(opt, factor=end_factor, total_iters=total_steps),
    ], milestones=[n_hold, n_hold + n_decay])


def _cosine(opt, total_steps: int, eta_min: float = 0.0):
    return sched.CosineAnnealingLR(opt, T_max=total_steps, eta_min=eta_min)


def _sgdr(opt, total_steps: int, T_0: int, T_mult: int = 1, eta_min: float = 0.0):
    return sched.CosineAnnealingWarmRestarts(opt, T_0=T_0, T_mult=T_mult, eta_min=eta_min)


def _cyclic(opt, total_steps: int, base_lr: float, step_size_up: int, mode: str = "triangular"):
    max_lr = [g["lr"] for g in opt.param_groups]
    return sched.CyclicLR(opt, base_lr=base_lr, max_lr=max_lr, step_size_up=step_size_up,
                          mode=mode, cycle_momentum=False)


def _one_cycle(opt, total_steps: int, pct_start: float = 0.3, div_factor: float = 25.0,
               final_div_factor: float = 1e4):
    max_lr = [g["lr"] for g in opt.param_groups]
    return sched.OneCycleLR(opt, max_lr=max_lr, total_steps=total_steps, pct_start=pct_start,
                            div_factor=div_factor, final_div_factor=final_div_factor,
                            cycle_momentum=False)


SCHEDULES: dict[str, Builder] = {
    "constant": _constant, "step": _step, "multistep": _multistep, "exponential": _exponential,
    "linear": _linear, "piecewise": _piecewise, "cosine": _cosine, "sgdr": _sgdr,
    "cyclic": _cyclic, "one_cycle": _one_cycle,
}


def make_schedule(opt: torch.optim.Optimizer, spec: dict[str, Any] | None,
                  total_steps: int) -> sched.LRScheduler:
    """Scheduler for ``spec`` over ``total_steps`` optimizer steps (``None`` = constant)."""
    spec = dict(spec or {"name": "constant"})
    name = spec.pop("name", None)
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; valid: {', '.join(SCHEDULES)}")
    if not isinstance(total_steps, int) or total_steps < 1:
        raise ValueError(f"total_steps must be a positive int, got {total_steps!r}")
    warmup = int(spec.pop("warmup_steps", 0))
    warmup_start = float(spec.pop("warmup_start_factor", 1e-3))
    if warmup < 0 or warmup >= total_steps:
        raise ValueError(f"warmup_steps must be in [0, {total_steps}), got {warmup}")
    try:
        main = SCHEDULES[name](opt, total_steps - warmup, **spec)
    except TypeError as err:
        import inspect
        args = [p for p in inspect.signature(SCHEDULES[name]).parameters if p not in ("opt", "total_steps")]
        raise ValueError(f"bad arguments for schedule {name!r}: {err}; valid: {', '.join(args)}") from None
    if warmup == 0:
        return main
    ramp = sched.LinearLR(opt, start_factor=warmup_start, end_factor=1.0, total_iters=warmup)
    return sched.SequentialLR(opt, [ramp, main], milestones=[warmup])


def epochs_to_steps(epochs: float, steps_per_epoch: int) -> int:
    return int(math.ceil(epochs * steps_per_epoch))


def linear_scaling(base_lr: float, batch_size: int, base_batch: int = 256) -> float:
    """The linear scaling rule (Goyal et al. 2017): lr = base_lr × batch / base_batch."""
    return base_lr * batch_size / base_batch


def lr_curve(spec: dict[str, Any] | None, total_steps: int, lr: float = 1.0) -> list[float]:
    """The learning rate at each of ``total_steps`` steps, for plotting and tests."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    s = make_schedule(opt, spec, total_steps)
    out = []
    for _ in range(total_steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        s.step()
    return out
