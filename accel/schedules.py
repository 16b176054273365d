"""Learning-rate schedules as data: a pure factor ``f(t)`` of the optimizer's rate, run by ``LambdaLR``.

A spec is ``{"name": ..., **arguments}``. Each schedule is a function of the step alone,
``lr(t) = lr0 · f(t)`` (Loshchilov & Hutter 2017 for cosine and SGDR, Smith 2017 for
cyclic rates, Smith & Topin 2018 for one-cycle, Hägele et al. 2024 for warmup-stable-decay),
so schedules compose by arithmetic (a warm-up is ``w(t)`` followed by ``f(t − W)``), can be
plotted without an optimizer (:func:`lr_factor`), and a rollback that rescales the optimizer's
base rates (:class:`accel.callbacks.DivergenceGuard`) rescales the whole schedule. Arguments given
as absolute rates (``eta_min``, cyclic's ``base_lr``) are divided by each parameter
group's own initial rate, as ``torch.optim.lr_scheduler`` does.

Lengths are in optimizer steps; any length argument may instead be given in epochs as
``<argument>_epochs`` (``step_size_epochs``, ``milestones_epochs``, ``T_0_epochs``,
``warmup_epochs`` ...) together with ``steps_per_epoch`` (in the spec or passed to
:func:`make_schedule`). ``warmup_steps`` in any spec prepends a linear warm-up from
``warmup_start_factor × lr(0)`` to ``lr(0)``, the schedule's first value (Goyal et al.
2017). Schedulers are stepped once per optimizer step. Bad specs raise ``ValueError``
naming the valid schedules or arguments.
"""
from __future__ import annotations

import bisect
import inspect
import math
from typing import Any, Callable

import torch
from torch.optim import lr_scheduler as sched

Factor = Callable[[int], float]
# A schedule's builder: (total steps, the group's initial lr, its arguments) -> f(t).
Builder = Callable[..., Factor]


def _constant(total_steps: int, lr0: float) -> Factor:
    """f(t) = 1."""
    return lambda t: 1.0


def _step(total_steps: int, lr0: float, step_size: int, gamma: float = 0.1) -> Factor:
    """Step decay: f(t) = gamma^floor(t / step_size)."""
    _positive_int("step_size", step_size)
    _positive("gamma", gamma)
    return lambda t: gamma ** (t // step_size)


def _multistep(total_steps: int, lr0: float, milestones: list[int], gamma: float = 0.1) -> Factor:
    """f(t) = gamma^(number of milestones <= t)."""
    milestones = list(milestones)
    if not milestones or any(isinstance(m, bool) or not isinstance(m, int) or m < 1 for m in milestones) \
            or milestones != sorted(set(milestones)):
        raise ValueError(f"milestones must be increasing positive ints, got {milestones!r}")
    _positive("gamma", gamma)
    return lambda t: gamma ** bisect.bisect_right(milestones, t)


def _exponential(total_steps: int, lr0: float, gamma: float) -> Factor:
    """f(t) = gamma^t."""
    _positive("gamma", gamma)
    return lambda t: gamma ** t


def _linear(total_steps: int, lr0: float, end_factor: float = 0.0) -> Factor:
    """f(t) = 1 + (end_factor − 1) · min(t, T) / T: linear decay to ``end_factor`` over the run."""
    _fraction("end_factor", end_factor)
    return lambda t: 1.0 + (end_factor - 1.0) * min(t, total_steps) / total_steps


def _piecewise(total_steps: int, lr0: float, hold: float = 0.2, decay: float = 0.6,
               end_factor: float = 0.0) -> Factor:
    """Constant for a fraction ``hold`` of the run, linear decay over ``decay``, then constant."""
    _fraction("hold", hold)
    _fraction("decay", decay)
    _fraction("end_factor", end_factor)
    if hold + decay > 1:
        raise ValueError(f"hold + decay must be at most 1, got {hold} + {decay}")
    n_hold = int(round(hold * total_steps))
    n_decay = max(1, int(round(decay * total_steps)))

    def f(t: int) -> float:
        if t < n_hold:
            return 1.0
        return 1.0 + (end_factor - 1.0) * min(t - n_hold, n_decay) / n_decay
    return f


def _cos(start: float, end: float, frac: float) -> float:
    """end + (start − end)(1 + cos(π frac)) / 2."""
    return end + (start - end) * (1.0 + math.cos(math.pi * frac)) / 2.0


def _cosine(total_steps: int, lr0: float, eta_min: float = 0.0) -> Factor:
    """Cosine annealing (Loshchilov & Hutter 2017) from lr0 to ``eta_min`` over the run."""
    low = eta_min / lr0
    return lambda t: _cos(1.0, low, min(t, total_steps) / total_steps)


def _sgdr(total_steps: int, lr0: float, T_0: int, T_mult: int = 1, eta_min: float = 0.0) -> Factor:
    """SGDR (Loshchilov & Hutter 2017): cosine cycles of T_0, T_0·T_mult, ... steps, each restarting at lr0."""
    _positive_int("T_0", T_0)
    _positive_int("T_mult", T_mult)
    low = eta_min / lr0

    def f(t: int) -> float:
        start, period = 0, T_0
        while t >= start + period:
            start, period = start + period, period * T_mult
        return _cos(1.0, low, (t - start) / period)
    return f


def _cyclic(total_steps: int, lr0: float, base_lr: float, step_size_up: int,
            mode: str = "triangular") -> Factor:
    """Cyclical learning rates (Smith 2017): between ``base_lr`` and lr0, half-cycle ``step_size_up``."""
    _positive_int("step_size_up", step_size_up)
    modes = ("triangular", "triangular2")
    if mode not in modes:
        raise ValueError(f"unknown cyclic mode {mode!r}; valid: {', '.join(modes)}")
    low = base_lr / lr0

    def f(t: int) -> float:
        cycle = math.floor(1 + t / (2 * step_size_up))
        x = abs(t / step_size_up - 2 * cycle + 1)
        scale = 1.0 if mode == "triangular" else 0.5 ** (cycle - 1)
        return low + (1.0 - low) * max(0.0, 1.0 - x) * scale
    return f


def _one_cycle(total_steps: int, lr0: float, pct_start: float = 0.3, div_factor: float = 25.0,
               final_div_factor: float = 1e4) -> Factor:
    """One-cycle (Smith & Topin 2018): cosine up from lr0/div_factor to lr0 by step
    pct_start·T − 1, then down to lr0/div_factor/final_div_factor at step T − 1 (torch's phases)."""
    if not 0 < pct_start < 1:
        raise ValueError(f"pct_start must be in (0, 1), got {pct_start}")
    _positive("div_factor", div_factor)
    _positive("final_div_factor", final_div_factor)
    start, end = 1.0 / div_factor, 1.0 / div_factor / final_div_factor
    peak = float(pct_start * total_steps) - 1.0
    last = float(total_steps - 1)

    def f(t: int) -> float:
        if t <= peak:
            return _cos(start, 1.0, t / peak) if peak > 0 else 1.0
        return _cos(1.0, end, min((t - peak) / (last - peak), 1.0))
    return f


def _spike(total_steps: int, lr0: float, start: int, length: int, factor: float) -> Factor:
    """lr0 · factor for ``length`` steps from ``start``, lr0 elsewhere: a controlled instability
    (the loss spikes of large runs, Zhang et al. 2022) for testing recovery from divergence."""
    if start < 0 or length < 1 or factor <= 0:
        raise ValueError(f"spike needs start >= 0, length >= 1 and factor > 0; "
                         f"got start={start}, length={length}, factor={factor}")
    end = start + length
    return lambda t: factor if start <= t < end else 1.0


COOLDOWNS = ("linear", "sqrt")


def _wsd(total_steps: int, lr0: float, cooldown_steps: int | None = None, cooldown_fraction: float = 0.2,
         cooldown: str = "linear", end_factor: float = 0.0) -> Factor:
    """Warmup-stable-decay (Hägele et al. 2024): constant, then a cooldown over the last C steps.

    With ``x = (t − (T − C)) / C`` the fraction of the cooldown done, f(t) = 1 before it and
    ``1 − (1 − end_factor)·x`` (``cooldown="linear"``) or ``1 − (1 − end_factor)·√x``
    (``"sqrt"``, their "1 − sqrt" shape) during it. ``C`` is ``cooldown_steps``, else
    ``round(cooldown_fraction · T)`` (at least 1) of this schedule's T steps (after any
    warm-up). The constant part does not depend on T, so one constant run with cooldowns
    branched off at steps L − C gives the WSD run of every length L.
    """
    if cooldown not in COOLDOWNS:
        raise ValueError(f"unknown cooldown {cooldown!r}; valid: {', '.join(COOLDOWNS)}")
    _fraction("end_factor", end_factor)
    if cooldown_steps is None:
        if not 0 < cooldown_fraction <= 1:
            raise ValueError(f"cooldown_fraction must be in (0, 1], got {cooldown_fraction!r}")
        cooldown_steps = max(1, int(round(cooldown_fraction * total_steps)))
    _positive_int("cooldown_steps", cooldown_steps)
    if cooldown_steps > total_steps:
        raise ValueError(f"cooldown_steps must be at most the schedule's {total_steps} steps, got {cooldown_steps}")
    start = total_steps - cooldown_steps
    shape = (lambda x: x) if cooldown == "linear" else math.sqrt

    def f(t: int) -> float:
        if t < start:
            return 1.0
        return 1.0 - (1.0 - end_factor) * shape(min(t - start, cooldown_steps) / cooldown_steps)
    return f


SCHEDULES: dict[str, Builder] = {
    "constant": _constant, "step": _step, "multistep": _multistep, "exponential": _exponential,
    "linear": _linear, "piecewise": _piecewise, "cosine": _cosine, "sgdr": _sgdr,
    "cyclic": _cyclic, "one_cycle": _one_cycle, "spike": _spike, "wsd": _wsd,
}
WARMUP_ARGS = ("warmup_steps", "warmup_start_factor")
# Arguments that are lengths in steps, hence may be given in epochs as ``<name>_epochs``.
STEP_ARGS = ("step_size", "milestones", "T_0", "step_size_up", "warmup_steps", "start", "length",
             "cooldown_steps")


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
    args = {p.name: p.default is inspect.Parameter.empty for p in params if p.name not in ("total_steps", "lr0")}
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


def _parse(spec: dict[str, Any] | None, total_steps: int,
           steps_per_epoch: int | None) -> tuple[str, dict[str, Any], int, float]:
    """Validate ``spec``; return its name, arguments, warm-up length and warm-up start factor."""
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
    warmup = spec.pop("warmup_steps", 0)
    warmup_start = float(spec.pop("warmup_start_factor", 1e-3))
    if isinstance(warmup, bool) or not isinstance(warmup, int) or not 0 <= warmup < total_steps:
        raise ValueError(f"warmup_steps must be an int in [0, {total_steps}), got {warmup!r}")
    if not 0 < warmup_start <= 1:
        raise ValueError(f"warmup_start_factor must be in (0, 1], got {warmup_start}")
    return name, spec, warmup, warmup_start


def lr_factor(spec: dict[str, Any] | None, total_steps: int, steps_per_epoch: int | None = None,
              lr0: float = 1.0) -> Factor:
    """The pure function ``t -> lr(t) / lr0`` of ``spec`` over ``total_steps`` steps.

    ``lr0`` is the group's initial rate, needed only by arguments given as absolute
    rates (``eta_min``, ``base_lr``). With a warm-up of ``W`` steps, ``f(t)`` ramps
    linearly from ``warmup_start_factor · g(0)`` to ``g(0)`` and then follows
    ``g(t − W)``, where ``g`` is the schedule over the remaining ``T − W`` steps.
    """
    name, args, warmup, start = _parse(spec, total_steps, steps_per_epoch)
    main = SCHEDULES[name](total_steps - warmup, lr0, **args)
    if warmup == 0:
        return main
    first = main(0)

    def f(t: int) -> float:
        if t < warmup:
            return first * (start + (1.0 - start) * t / warmup)
        return main(t - warmup)
    return f


def make_schedule(opt: torch.optim.Optimizer, spec: dict[str, Any] | None, total_steps: int,
                  steps_per_epoch: int | None = None) -> sched.LambdaLR:
    """``LambdaLR`` over ``opt`` running ``spec`` for ``total_steps`` steps (``None`` = constant)."""
    _parse(spec, total_steps, steps_per_epoch)  # one clear error before anything is built
    factors = [lr_factor(spec, total_steps, steps_per_epoch, lr0=g.get("initial_lr", g["lr"]))
               for g in opt.param_groups]
    return sched.LambdaLR(opt, factors)


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
