"""Chapter 3's probes of update rules, on problems built so that the theory applies exactly.

Every rule is torch's own (through :func:`accel.trajectory.minimize` and the optimizer
factory); these functions only build the problem and read off what the papers predict:

- heavy-ball momentum on a constant or alternating slope, whose step tends to
  η/(1 − α) or η/(1 + α) (Polyak 1964);
- Nesterov against heavy ball on an ill-conditioned quadratic (Sutskever et al. 2013);
- AdaGrad's and RMSProp's effective step on a stationary stochastic problem (Duchi et
  al. 2011; Tieleman & Hinton 2012);
- Adam's first steps with and without its bias correction, computed from torch's own
  state (Kingma & Ba 2015, §3);
- the Adam + L2 / AdamW learning-rate × decay grid (Loshchilov & Hutter 2019), every cell a
  member of one vectorized model (:mod:`accel.experiments.members`).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch

from ..callbacks.step_size import step_sizes
from .surfaces import Surface, linear
from .trajectory import minimize, path

STEP_RATIO = "step / (η|g|)"
WITH_CORRECTION = "with correction (torch Adam)"
WITHOUT_CORRECTION = "without correction (from its m_t, v_t)"
PATTERNS = ("constant slope", "alternating slope")


def forgetting_steps(alpha: float, tol: float = 1e-4, extra: int = 10) -> int:
    """Steps after which momentum α has forgotten its start (α^T < tol), plus ``extra``."""
    if not 0 <= alpha < 1:
        raise ValueError(f"momentum must be in [0, 1), got {alpha}")
    return int(np.ceil(np.log(tol) / np.log(alpha))) + extra if alpha > 0 else extra


def terminal_ratio(alpha: float, pattern: str) -> float:
    """Heavy ball's limit step / (η|g|): 1/(1 − α) on a constant slope, 1/(1 + α) on an
    alternating one (the geometric sums of Polyak's velocity)."""
    if pattern not in PATTERNS:
        raise ValueError(f"unknown pattern {pattern!r}; valid: {', '.join(PATTERNS)}")
    return 1 / (1 - alpha) if pattern == "constant slope" else 1 / (1 + alpha)


def heavy_ball_steps(alphas: Sequence[float], eta: float) -> pd.DataFrame:
    """torch SGD(momentum=α) on f = g_t·θ with g_t = 1 or (−1)^t: rows ``alpha, pattern,
    step, step / (η|g|), theory``, for :func:`forgetting_steps` steps per α."""
    signs = {"constant slope": lambda t: 1.0, "alternating slope": lambda t: (-1.0) ** t}
    rows = []
    for alpha in alphas:
        T = forgetting_steps(alpha)
        for pattern, sign in signs.items():
            steps: list[float] = []
            minimize(lambda p, t: linear([sign(t)])(p), [0.0], {"name": "sgd", "lr": eta, "momentum": alpha}, T,
                     on_step=lambda t, loss, b, g, a, opt: steps.append(abs(float(a[0] - b[0])) / eta))
            theory = terminal_ratio(alpha, pattern)
            rows += [{"alpha": alpha, "pattern": pattern, "step": t + 1, STEP_RATIO: s, "theory": theory}
                     for t, s in enumerate(steps)]
    return pd.DataFrame(rows)


def terminal_steps(steps: pd.DataFrame) -> pd.DataFrame:
    """The last step of each (pattern, α) run of :func:`heavy_ball_steps`, with its relative
    error against the theory; indexed by ``(pattern, alpha)``."""
    terminal = steps.groupby(["pattern", "alpha"]).tail(1).set_index(["pattern", "alpha"])
    return terminal.assign(rel_error=(terminal[STEP_RATIO] / terminal.theory - 1).abs())


def sign_changes(values: np.ndarray) -> int:
    """How many times consecutive entries change sign (zeros change nothing)."""
    v = np.asarray(values)
    return int((np.sign(v[1:]) * np.sign(v[:-1]) < 0).sum())


def first_step_below(trajectory: pd.DataFrame, level: float) -> int | float:
    """The first ``step`` whose loss is below ``level`` (NaN: never)."""
    hit = trajectory[trajectory.loss < level]
    return int(hit.step.iloc[0]) if len(hit) else np.nan


def nesterov_vs_heavy_ball(surface: Surface, alphas: Sequence[float], lr: float, steps: int,
                           tol: float = 1e-10) -> pd.DataFrame:
    """Heavy ball and Nesterov from the surface's start: rows ``alpha, method, steps to
    1e-10·f0`` (the label names the default ``tol``) and ``sign changes of y``."""
    f0 = float(surface(torch.tensor(surface.start, dtype=torch.float64)))
    rows = []
    for alpha in alphas:
        for name in ("momentum", "nesterov"):
            df = path(surface, {"name": name, "lr": lr, "momentum": alpha}, steps, start=surface.start)
            rows.append({"alpha": alpha, "method": "heavy ball" if name == "momentum" else "Nesterov",
                         "steps to 1e-10·f0": first_step_below(df, tol * f0),
                         "sign changes of y": sign_changes(df.y.to_numpy())})
    return pd.DataFrame(rows)


def stationary_gradients(steps: int, n: int = 200, mean: float = 0.5, seed: int = 0) -> torch.Tensor:
    """``(steps, n)`` gradients g_t ~ N(mean, 1), the same distribution at every step (float64)."""
    gen = torch.Generator().manual_seed(seed)
    return mean + torch.randn(steps, n, generator=gen, dtype=torch.float64)


def _stationary_loss(grads: torch.Tensor) -> Callable[[torch.Tensor, int], torch.Tensor]:
    return lambda p, t: (grads[t - 1] * p).sum()


def effective_steps(grads: torch.Tensor, specs: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Each labelled optimizer on the linear losses g_t·θ (θ from 0): rows ``optimizer, step,
    delta, ratio`` from :func:`accel.callbacks.step_size.step_sizes` (for AdaGrad and RMSProp
    the ratio is exactly their preconditioner)."""
    rows = []
    for label, spec in specs.items():
        minimize(_stationary_loss(grads), torch.zeros(grads.shape[1]), spec, len(grads),
                 on_step=lambda t, loss, b, g, a, opt: rows.append(
                     {"optimizer": label, "step": t, **step_sizes(b, a, g, spec["lr"])}))
    return pd.DataFrame(rows)


def late_slopes(steps: pd.DataFrame, y: str = "ratio") -> dict[str, float]:
    """Per optimizer, the log-log slope of ``y`` against ``step`` over the second half of the
    run (past the warm-up of moving averages): −1/2 for AdaGrad, 0 for RMSProp."""
    window = steps[steps.step > steps.step.max() // 2]
    return {name: float(np.polyfit(np.log(df.step), np.log(df[y]), 1)[0])
            for name, df in window.groupby("optimizer")}


def adam_steps(grads: torch.Tensor, lr: float, steps: int | None = None) -> pd.DataFrame:
    """torch Adam on the linear losses g_t·θ: per step, mean |Δθ|/lr as taken (bias-corrected)
    and as an uncorrected Adam would take it from the same state, lr·m_t/(√v_t + ε)
    (Kingma & Ba 2015, §3). torch has no switch to drop the correction; no second Adam."""
    rows = []

    def record(t: int, loss: float, before: torch.Tensor, grad: torch.Tensor, after: torch.Tensor,
               opt: torch.optim.Optimizer) -> None:
        state = opt.state[opt.param_groups[0]["params"][0]]
        eps = opt.param_groups[0]["eps"]
        uncorrected = lr * state["exp_avg"] / (state["exp_avg_sq"].sqrt() + eps)
        rows.append({"step": t, WITH_CORRECTION: float((after - before).abs().mean()) / lr,
                     WITHOUT_CORRECTION: float(uncorrected.abs().mean()) / lr})

    minimize(_stationary_loss(grads), torch.zeros(grads.shape[1]), {"name": "adam", "lr": lr},
             len(grads) if steps is None else steps, on_step=record)
    return pd.DataFrame(rows)


def bias_correction_excess(bias: pd.DataFrame) -> dict[str, float]:
    """From :func:`adam_steps`: the first corrected step / lr (``first_step``), the uncorrected /
    corrected ratio at step 1 (``bias_first``), its peak and the step of the peak."""
    ratio = bias[WITHOUT_CORRECTION] / bias[WITH_CORRECTION]
    first = bias.iloc[0]
    return {"first_step": float(first[WITH_CORRECTION]),
            "bias_first": float(first[WITHOUT_CORRECTION] / first[WITH_CORRECTION]),
            "bias_peak": float(ratio.max()), "bias_peak_step": float(bias.step[ratio.idxmax()])}


def decay_spec(method: str, lr: float, decay: float) -> dict[str, Any]:
    """``Adam + L2``: torch Adam's ``weight_decay`` (λθ added to the gradient). ``AdamW``: a
    per-step decay λ as in Loshchilov & Hutter 2019, i.e. torch's ``weight_decay = λ / lr``
    (torch multiplies its decay by lr)."""
    if method == "Adam + L2":
        return {"name": "adam", "lr": lr, "weight_decay": decay}
    if method == "AdamW":
        return {"name": "adamw", "lr": lr, "weight_decay": decay / lr}
    raise ValueError(f"unknown method {method!r}; valid: Adam + L2, AdamW")


def decay_members(lrs: Sequence[float], decays: dict[str, Sequence[float]], seeds: Sequence[int]
                  ) -> list[dict[str, Any]]:
    """One :mod:`accel.experiments.members` member per method × lr × decay × seed, labelled
    ``method`` and ``decay`` (the λ of :func:`decay_spec`)."""
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {list(seeds)}")
    return [{"spec": decay_spec(method, lr, wd), "seed": int(s), "method": method, "decay": float(wd)}
            for method, values in decays.items() for lr in lrs for wd in values for s in seeds]


def weight_decay_grid(build: Callable[[], torch.nn.Module], train: tuple[torch.Tensor, torch.Tensor],
                      test: tuple[torch.Tensor, torch.Tensor], lrs: Sequence[float],
                      decays: dict[str, Sequence[float]], seeds: Sequence[int], *, steps: int, batch_size: int,
                      schedule: dict[str, Any] | None = None) -> pd.DataFrame:
    """Train ``build()`` for every method × lr × decay × seed as one vectorized model
    (:func:`accel.experiments.members.train_members`; torch's Adam and AdamW, the decay applied
    as torch applies it). Rows ``method, lr, decay, seed, train accuracy, train loss, test
    accuracy`` after ``steps`` steps; the seed sets both the initial weights and the data order,
    so the cells of one seed are paired."""
    from .members import last, train_members

    end = last(train_members(build, train, decay_members(lrs, decays, seeds), steps=steps,
                             batch_size=batch_size, evals={"test": test}, schedule=schedule))
    return pd.DataFrame({"method": end.method, "lr": end.lr, "decay": end.decay, "seed": end.seed,
                         "train accuracy": end.train_acc, "train loss": end.train_loss,
                         "test accuracy": end.test_acc})


def best_cells(grid: pd.DataFrame, value: str = "test accuracy") -> pd.DataFrame:
    """Per method and learning rate, the decay with the best seed-mean ``value``, and whether it
    lies strictly inside the decay grid (``interior``)."""
    mean = grid.groupby(["method", "lr", "decay"], sort=True)[value].mean().reset_index()
    rows = []
    for (method, lr), row in mean.groupby(["method", "lr"], sort=False):
        row = row.sort_values("decay", ignore_index=True)
        i = int(row[value].fillna(-np.inf).idxmax())
        rows.append({"method": method, "lr": lr, "best decay": float(row.decay[i]), value: float(row[value][i]),
                     "interior": bool(0 < i < len(row) - 1)})
    return pd.DataFrame(rows)


def seed_slopes(grid: pd.DataFrame, slope: Callable[[pd.DataFrame], float]) -> pd.DataFrame:
    """``slope(cells)`` of each method's grid, one seed at a time: rows ``seed`` × method."""
    out: dict[int, dict[str, float]] = {}
    for (seed, method), cells in grid.groupby(["seed", "method"], sort=True):
        out.setdefault(int(seed), {})[method] = float(slope(cells))
    return pd.DataFrame.from_dict(out, orient="index").rename_axis("seed")
