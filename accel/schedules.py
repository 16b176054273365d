"""Learning-rate schedules as data, built on `torch.optim.lr_scheduler`.

A spec is ``{"name": ..., **arguments}``. Lengths are in optimizer steps; any length
argument may instead be given in epochs as ``<argument>_epochs`` (``step_size_epochs``,
``milestones_epochs``, ``T_0_epochs``, ``warmup_epochs`` ...) together with
``steps_per_epoch`` (in the spec or passed to :func:`make_schedule`), and is converted
with :func:`epochs_to_steps`. ``warmup_steps`` in any spec prepends a linear warm-up
from ``warmup_start_factor × lr0`` to ``lr0``, the schedule's first value (the optimizer's
lr, or ``base_lr`` for cyclic and ``lr / div_factor`` for one-cycle) (Goyal et al. 2017),
through ``SequentialLR``.
Schedulers are stepped once per optimizer step. Bad specs raise ``ValueError`` naming
the valid schedules or arguments.
"""
from __future__ import annotations

import inspect
import math
from typing import Any, Callable

import torch
from torch.optim import lr_scheduler as sched

Builder = Callable[..., sched.LRScheduler]


def _constant(opt: torch.optim.Optimizer, total_steps: int) -> sched.LRScheduler:
    """lr(t) = lr."""
    return sched.ConstantLR(opt, factor=1.0, total_iters=0)


def _step(opt: torch.optim.Optimizer, total_steps: int, step_size: int, gamma: float = 0.1) -> sched.LRScheduler:
    """Step decay: lr(t) = lr · gamma^floor(t / step_size)."""
    _positive_int("step_size", step_size)
    _positive("gamma", gamma)
    return sched.StepLR(opt, step_size=step_size, gamma=gamma)


def _multistep(opt: torch.optim.Optimizer, total_steps: int, milestones: list[int],
               gamma: float = 0.1) -> sched.LRScheduler:
    """lr(t) = lr · gamma^(number of milestones <= t)."""
    milestones = list(milestones)
    if not milestones or any(not isinstance(m, int) or m < 1 for m in milestones) \
            or milestones != sorted(set(milestones)):
        raise ValueError(f"milestones must be increasing positive ints, got {milestones!r}")
    _positive("gamma", gamma)
    return sched.MultiStepLR(opt, milestones=milestones, gamma=gamma)


def _exponential(opt: torch.optim.Optimizer, total_steps: int, gamma: float) -> sched.LRScheduler:
    """lr(t) = lr · gamma^t."""
    _positive("gamma", gamma)
    return sched.ExponentialLR(opt, gamma=gamma)


def _linear(opt: torch.optim.Optimizer, total_steps: int, end_factor: float = 0.0) -> sched.LRScheduler:
    """lr(t) = lr · (1 + (end_factor − 1) · t / total_steps): linear decay to ``end_factor``."""
    _fraction("end_factor", end_factor)
    return sched.LinearLR(opt, start_factor=1.0, end_factor=end_factor, total_iters=total_steps)


def _piecewise(opt: torch.optim.Optimizer, total_steps: int, hold: float = 0.2, decay: float = 0.6,
               end_factor: float = 0.0) -> sched.LRScheduler:
    """Constant for a fraction ``hold`` of the run, linear decay over ``decay``, then constant."""
    _fraction("hold", hold)
    _fraction("decay", decay)
    _fraction("end_factor", end_factor)
    if hold + decay > 1:
        raise ValueError(f"hold + decay must be at most 1, got {hold} + {decay}")
    n_hold = int(round(hold * total_steps))
    n_decay = max(1, int(round(decay * total_steps)))
    return sched.SequentialLR(opt, [
        sched.ConstantLR(opt, factor=1.0, total_iters=n_hold),
        sched.LinearLR(opt, start_factor=1.0, end_factor=end_factor, total_iters=n_decay),
        sched.ConstantLR(opt, factor=end_factor, total_iters=total_steps),
    ], milestones=[n_hold, n_hold + n_decay])


def _cosine(opt: torch.optim.Optimizer, total_steps: int, eta_min: float = 0.0) -> sched.LRScheduler:
    """Cosine annealing (Loshchilov & Hutter 2017): eta_min + (lr − eta_min)(1 + cos(π t / T)) / 2."""
    return sched.CosineAnnealingLR(opt, T_max=total_steps, eta_min=eta_min)


def _sgdr(opt: torch.optim.Optimizer, total_steps: int, T_0: int, T_mult: int = 1,
          eta_min: float = 0.0) -> sched.LRScheduler:
    """SGDR (Loshchilov & Hutter 2017): cosine cycles of T_0, T_0·T_mult, ... steps, each restarting at lr."""
    _positive_int("T_0", T_0)
    _positive_int("T_mult", T_mult)
    return sched.CosineAnnealingWarmRestarts(opt, T_0=T_0, T_mult=T_mult, eta_min=eta_min)


def _cyclic(opt: torch.optim.Optimizer, total_steps: int, base_lr: float, step_size_up: int,
            mode: str = "triangular") -> sched.LRScheduler:
    """Cyclical learning rates (Smith 2017): between ``base_lr`` and the optimizer's lr, half-cycle ``step_size_up``."""
    _positive_int("step_size_up", step_size_up)
    modes = ("triangular", "triangular2", "exp_range")
    if mode not in modes:
        raise ValueError(f"unknown cyclic mode {mode!r}; valid: {', '.join(modes)}")
    max_lr = [g["lr"] for g in opt.param_groups]
    return sched.CyclicLR(opt, base_lr=base_lr, max_lr=max_lr, step_size_up=step_size_up,
                          mode=mode, cycle_momentum=False)


def _one_cycle(opt: torch.optim.Optimizer, total_steps: int, pct_start: float = 0.3, div_factor: float = 25.0,
               final_div_factor: float = 1e4) -> sched.LRScheduler:
    """One-cycle (Smith & Topin 2018): cosine up from lr/div_factor to lr, then down to lr/div_factor/final_div_factor."""
    if not 0 < pct_start < 1:
        raise ValueError(f"pct_start must be in (0, 1), got {pct_start}")
    max_lr = [g["lr"] for g in opt.param_groups]
    return sched.OneCycleLR(opt, max_lr=max_lr, total_steps=total_steps, pct_start=pct_start,
                            div_factor=div_factor, final_div_factor=final_div_factor,
                            cycle_momentum=False)


def _spike(opt: torch.optim.Optimizer, total_steps: int, start: int, length: int,
           factor: float) -> sched.LRScheduler:
    """lr · factor for ``length`` steps from ``start``, lr elsewhere: a controlled instability
    (the loss spikes of large runs, Zhang et al. 2022) for testing recovery from divergence."""
    if start < 0 or length < 1 or factor <= 0:
        raise ValueError(f"spike needs start >= 0, length >= 1 and factor > 0; "
                         f"got start={start}, length={length}, factor={factor}")
    end = start + length
    return sched.LambdaLR(opt, lambda t: factor if start <= t < end else 1.0)


SCHEDULES: dict[str, Builder] = {
    "constant": _constant, "step": _step, "multistep": _multistep, "exponential": _exponential,
    "linear": _linear, "piecewise": _piecewise, "cosine": _cosine, "sgdr": _sgdr,
    "cyclic": _cyclic, "one_cycle": _one_cycle, "spike": _spike,
}
WARMUP_ARGS = ("warmup_steps", "warmup_start_factor")
# Arguments that are lengths in steps, hence may be given in epochs as ``<name>_epochs``.
STEP_ARGS = ("step_size", "milestones", "T_0", "step_size_up", "warmup_steps", "start", "length")


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be positive, got {value!r}")


def _positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int (steps), got {value!r}")


def _fraction(name: str, value: float) -> None:
    if not 0 <= value <= 1:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")


def schedule_arguments(name: str) -> dict[str, bool]:
    """The arguments schedule ``name`` accepts, each mapped to whether it is required."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; valid: {', '.join(SCHEDULES)}")
    params = inspect.signature(SCHEDULES[name]).parameters.values()
    args = {p.name: p.default is inspect.Parameter.empty for p in params if p.name not in ("opt", "total_steps")}
    return {**args, **{w: False for w in WARMUP_ARGS}}


def _epoch_key(arg: str) -> str:
    return "warmup_epochs" if arg == "warmup_steps" else f"{arg}_epochs"


def epochs_to_steps(epochs: float | list[float], steps_per_epoch: int) -> int | list[int]:
    """Steps in ``epochs`` epochs (rounded up); a list converts element-wise (milestones)."""
    _positive_int("steps_per_epoch", steps_per_epoch)
    if isinstance(epochs, (list, tuple)):
        return [epochs_to_steps(e, steps_per_epoch) for e in epochs]
    if epochs < 0:
        raise ValueError(f"epochs must be non-negative, got {epochs!r}")
    return int(math.ceil(epochs * steps_per_epoch - 1e-9))


def to_steps(spec: dict[str, Any], steps_per_epoch: int | None = None) -> dict[str, Any]:
    """``spec`` with every ``<argument>_epochs`` replaced by ``<argument>`` in steps.

    ``steps_per_epoch`` comes from the argument or the spec's own ``steps_per_epoch``
    key (so a spec stored in a checkpoint converts itself).
    """
    spec = dict(spec)
    own = spec.pop("steps_per_epoch", None)
    steps_per_epoch = steps_per_epoch if steps_per_epoch is not None else own
    for arg in STEP_ARGS:
        key = _epoch_key(arg)
        if key not in spec:
            continue
        if arg in spec:
            raise ValueError(f"give {arg!r} or {key!r}, not both")
        if steps_per_epoch is None:
            raise ValueError(f"{key!r} needs steps_per_epoch (in the spec or as an argument)")
        spec[arg] = epochs_to_steps(spec.pop(key), steps_per_epoch)
    return spec


def make_schedule(opt: torch.optim.Optimizer, spec: dict[str, Any] | None, total_steps: int,
                  steps_per_epoch: int | None = None) -> sched.LRScheduler:
    """Scheduler for ``spec`` over ``total_steps`` optimizer steps (``None`` = constant)."""
    spec = dict(spec or {"name": "constant"})
    name = spec.pop("name", None)
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; valid: {', '.join(SCHEDULES)}")
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
        raise ValueError(f"total_steps must be a positive int, got {total_steps!r}")
    spec = to_steps(spec, steps_per_epoch)
    valid = schedule_arguments(name)
    unknown = [k for k in spec if k not in valid]
    missing = [k for k, required in valid.items() if required and k not in spec]
    if unknown or missing:
        what = f"unknown {unknown}" if unknown else f"missing {missing}"
        raise ValueError(f"bad arguments for schedule {name!r}: {what}; valid: {', '.join(valid)} "
                         f"(lengths also as <name>_epochs with steps_per_epoch)")
    warmup = int(spec.pop("warmup_steps", 0))
    warmup_start = float(spec.pop("warmup_start_factor", 1e-3))
    if warmup < 0 or warmup >= total_steps:
        raise ValueError(f"warmup_steps must be in [0, {total_steps}), got {warmup}")
    if not 0 < warmup_start <= 1:
        raise ValueError(f"warmup_start_factor must be in (0, 1], got {warmup_start}")
    main = SCHEDULES[name](opt, total_steps - warmup, **spec)
    if warmup == 0:
        return main
    ramp = sched.LinearLR(opt, start_factor=warmup_start, end_factor=1.0, total_iters=warmup)
    if isinstance(main, sched.SequentialLR):  # SequentialLR does not nest: splice its phases in
        phases, milestones = main._schedulers, [warmup + m for m in main._milestones]
        return sched.SequentialLR(opt, [ramp, *phases], milestones=[warmup, *milestones])
    return sched.SequentialLR(opt, [ramp, main], milestones=[warmup])


def linear_scaling(base_lr: float, batch_size: int, base_batch: int = 256) -> float:
    """The linear scaling rule (Goyal et al. 2017): lr = base_lr × batch / base_batch."""
    return base_lr * batch_size / base_batch


def lr_curve(spec: dict[str, Any] | None, total_steps: int, lr: float = 1.0,
             steps_per_epoch: int | None = None) -> list[float]:
    """The learning rate used at each of ``total_steps`` steps, for plotting and tests."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    s = make_schedule(opt, spec, total_steps, steps_per_epoch)
    out = []
    for _ in range(total_steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        s.step()
    return out
