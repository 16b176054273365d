"""The speed-run: time to a test-accuracy target of MNIST-1D CNN recipes, one plain loop.

A :class:`Recipe` is the data of a training run: the book's CNN (two Conv1d layers of 32
channels) with an ``init`` and a ``norm``, an optional frozen input-whitening layer
(:class:`accel.models.whitening.Whitening1d`, airbench's first layer), an optimizer and
rate, a batch size, a schedule with warm-up over a ``horizon``, label smoothing, an
exponential moving average of the weights (EMA) or Lookahead, and augmentation
(:class:`accel.data.augment.Augment`). :func:`run` trains one recipe for one seed and
returns, per target, the first evaluated step at which the test accuracy reaches it and
the training wall-clock seconds up to that step.

What is timed (``time.perf_counter``, one thread): building the model (including fitting
the whitening layer on the training inputs), and every training step (batch selection,
augmentation, forward, backward, optimizer step, EMA update). What is not: evaluating on
the test set every ``eval_every`` steps (the model in eval mode; the EMA copy when the
recipe has one), as in AlgoPerf and the airbench records. Runs stop once every target is
reached, at the schedule's horizon, or at ``max_steps``; a target not reached is censored
at the last step (a lower bound). Same recipe and seed, same steps (the wall clock differs).
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Callable, Iterable, Mapping, Sequence

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..data.augment import Augment
from ..models import CNN1d
from ..models.init import INITS
from ..models.norm import NORMS
from ..models.whitening import Whitening1d
from ..optim import check_optimizer, make_optimizer
from ..schedules import SCHEDULES, lr_factor
from ..seeding import seed_everything

Split = tuple[torch.Tensor, torch.Tensor]
CHANNELS = (32, 32)
AUGMENT_KEYS = ("max_shift", "corr_noise", "iid_noise", "shear")


@dataclass(frozen=True)
class Recipe:
    """One training recipe; :meth:`check` refuses impossible values before any work starts.

    ``schedule`` names an :data:`accel.schedules.SCHEDULES` entry run over ``horizon``
    steps (0: over ``max_steps``) after ``warmup`` linear warm-up steps. ``ema``: the EMA
    decay (0: off); ``lookahead``: Lookahead's ``k`` (0: off, alpha 0.5). ``whiten``: the
    whitening patch length (0: no whitening layer). ``augment``: ``Augment`` arguments.
    ``options``: further optimizer arguments (``betas``, Muon's ``adamw_lr``, ...).
    """
    name: str = "reference"
    optimizer: str = "adam"
    lr: float = 1e-2
    batch: int = 100
    init: str = "default"
    norm: str = "none"
    schedule: str = "constant"
    warmup: int = 0
    horizon: int = 0
    label_smoothing: float = 0.0
    ema: float = 0.0
    lookahead: int = 0
    whiten: int = 0
    augment: Mapping[str, float] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        check_optimizer(self.optimizer)
        if self.init not in INITS:
            raise ValueError(f"unknown init {self.init!r}; valid: {', '.join(INITS)}")
        if self.norm not in NORMS:
            raise ValueError(f"unknown norm {self.norm!r}; valid: {', '.join(NORMS)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; valid: {', '.join(SCHEDULES)}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        for key, low in (("batch", 1), ("warmup", 0), ("horizon", 0), ("lookahead", 0), ("whiten", 0)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{key} must be an int >= {low}, got {value!r}")
        if self.horizon and self.warmup >= self.horizon:
            raise ValueError(f"warmup ({self.warmup}) must be shorter than the horizon ({self.horizon})")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema must be a decay in [0, 1), got {self.ema!r}")
        if self.ema and self.lookahead:
            raise ValueError("choose one weight-averaging method: ema or lookahead, not both")
        unknown = sorted(set(self.augment) - set(AUGMENT_KEYS))
        if unknown:
            raise ValueError(f"unknown augmentation {unknown}; valid: {', '.join(AUGMENT_KEYS)}")
        Augment(**self.augment)

    def but(self, name: str, **changes: Any) -> "Recipe":
        """This recipe with ``changes`` (validated), called ``name``."""
        bad = sorted(set(changes) - {f.name for f in fields(self)})
        if bad:
            raise ValueError(f"Recipe has no field {bad}; valid: {', '.join(f.name for f in fields(self))}")
        return replace(self, name=name, **changes)

    def scaled_batch(self, name: str, batch: int, **changes: Any) -> "Recipe":
        """The linear scaling rule (Goyal et al. 2017): batch × k, learning rate × k."""
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be a positive int, got {batch!r}")
        return self.but(name, batch=batch, lr=self.lr * batch / self.batch, **changes)

    def describe(self) -> dict[str, Any]:
        return {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in asdict(self).items()}


def build(recipe: Recipe, x_train: torch.Tensor) -> nn.Module:
    """The recipe's network: [Whitening1d(±) → GELU →] CNN1d(…, [32, 32], 10, norm, init)."""
    if not recipe.whiten:
        return CNN1d(1, list(CHANNELS), 10, norm=recipe.norm, init=recipe.init)
    white = Whitening1d.from_data(x_train, recipe.whiten, negate=True)
    return nn.Sequential(white, nn.GELU(),
                         CNN1d(white.out_channels, list(CHANNELS), 10, norm=recipe.norm, init=recipe.init))


def _optimizer(recipe: Recipe, model: nn.Module) -> torch.optim.Optimizer:
    opt = make_optimizer(model, {"name": recipe.optimizer, "lr": recipe.lr, **dict(recipe.options)})
    if recipe.lookahead:
        from pytorch_optimizer import Lookahead
        opt = Lookahead(opt, k=recipe.lookahead, alpha=0.5)
    return opt


@torch.no_grad()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    was = model.training
    model.eval()
    acc = float((model(x).argmax(-1) == y).float().mean())
    model.train(was)
    return acc


@torch.no_grad()
def _ema_update(avg: nn.Module, model: nn.Module, decay: float) -> None:
    for a, p in zip(avg.parameters(), model.parameters()):
        a.lerp_(p, 1 - decay)
    for a, b in zip(avg.buffers(), model.buffers()):
        a.copy_(b)


def run(recipe: Recipe, train: Split, test: Split, *, seed: int, targets: Sequence[float], max_steps: int,
        eval_every: int, resolution: float = 0.0, run_to_horizon: bool = False) -> dict[str, Any]:
    """Train ``recipe`` for one ``seed``; the steps and seconds to each of ``targets``.

    Returns ``{"recipe", "seed", "steps", "seconds", "build_seconds", "final_acc", "steps@T",
    "seconds@T", "censored@T", ...}`` with ``T`` each target (``seconds`` include
    ``build_seconds``, the time to build the model and fit its whitening layer). ``run_to_horizon``: keep training to the
    horizon (or ``max_steps``) after every target is reached, so ``final_acc`` is the
    accuracy at the end of the recipe's full length. Evaluations come every ``eval_every``
    steps, and with ``resolution`` > 0 every ``resolution · step`` steps once that is longer
    (rounded down to a multiple of ``eval_every``): a relative error of at most
    ``resolution`` in the steps to a target, at a fraction of the evaluations of long runs.
    """
    x, y = train
    targets = sorted(float(t) for t in targets)
    if not targets or not all(0 < t <= 1 for t in targets):
        raise ValueError(f"targets must be accuracies in (0, 1], got {targets!r}")
    for key, value in (("max_steps", max_steps), ("eval_every", eval_every)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} must be a positive int, got {value!r}")
    if not 0 <= resolution < 1:
        raise ValueError(f"resolution must be in [0, 1), got {resolution!r}")
    if recipe.batch > len(x):
        raise ValueError(f"batch {recipe.batch} exceeds the {len(x)} training samples")
    length = min(recipe.horizon or max_steps, max_steps)
    if recipe.warmup >= length:
        raise ValueError(f"warmup ({recipe.warmup}) must be shorter than the run ({length} steps)")
    seed_everything(int(seed))
    generator = torch.Generator().manual_seed(int(seed))
    augment = Augment(**recipe.augment)
    clock = time.perf_counter()
    model = build(recipe, x)
    optimizer = _optimizer(recipe, model)
    sched = {"name": recipe.schedule, **({"warmup_steps": recipe.warmup} if recipe.warmup else {})}
    factor = lr_factor(sched, recipe.horizon or length)
    base = [g["lr"] for g in optimizer.param_groups]
    avg = copy.deepcopy(model) if recipe.ema else None
    timed = built = time.perf_counter() - clock
    per_epoch = len(x) // recipe.batch
    hit: dict[float, tuple[int, float]] = {}
    acc, step, perm, due = float("nan"), 0, None, eval_every
    while step < length:
        clock = time.perf_counter()
        j = step % per_epoch
        if j == 0:
            perm = torch.randperm(len(x), generator=generator)
        idx = perm[j * recipe.batch:(j + 1) * recipe.batch]
        xb = augment(x[idx], generator) if augment.active else x[idx]
        f = factor(step)
        for g, lr0 in zip(optimizer.param_groups, base):
            g["lr"] = lr0 * f
        loss = F.cross_entropy(model(xb), y[idx], label_smoothing=recipe.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        if not torch.isfinite(loss):
            break
        loss.backward()
        optimizer.step()
        step += 1
        if avg is not None:
            _ema_update(avg, model, min(recipe.ema, (1 + step) / (10 + step)))
        timed += time.perf_counter() - clock
        if step == due or step == length:
            due = step + next_interval(step, eval_every, resolution)
            acc = _accuracy(avg if avg is not None else model, *test)
            for t in targets:
                if acc >= t and t not in hit:
                    hit[t] = (step, timed)
            if len(hit) == len(targets) and not run_to_horizon:
                break
    out: dict[str, Any] = {"recipe": recipe.name, "seed": int(seed), "steps": step, "seconds": timed,
                           "build_seconds": built, "final_acc": acc}
    for t in targets:
        s, sec = hit.get(t, (step, timed))
        out.update({f"steps@{t:g}": s, f"seconds@{t:g}": sec, f"censored@{t:g}": t not in hit})
    return out


def next_interval(step: int, eval_every: int, resolution: float) -> int:
    """Steps to the next evaluation after ``step``: ``eval_every``, or the largest multiple of it
    not above ``resolution · step`` when that is larger."""
    return max(eval_every, int(resolution * step) // eval_every * eval_every)


def run_seeds(recipe: Recipe, train: Split, test: Split, seeds: Iterable[int], **kwargs: Any) -> pd.DataFrame:
    """:func:`run` for each seed, one row per seed."""
    return pd.DataFrame([run(recipe, train, test, seed=s, **kwargs) for s in seeds])


def interleaved(recipes: Sequence[Recipe], train: Split, test: Split, seeds: Sequence[int], **kwargs: Any
                ) -> pd.DataFrame:
    """Every recipe for every seed, alternating recipes seed by seed and reversing the order on
    every other seed (ABBA...), so slow drifts of the machine's load hit every recipe alike."""
    if len({r.name for r in recipes}) != len(recipes):
        raise ValueError(f"recipe names must be distinct, got {[r.name for r in recipes]}")
    rows = []
    for i, s in enumerate(seeds):
        order = recipes if i % 2 == 0 else list(reversed(recipes))
        for k, r in enumerate(order):
            rows.append({**run(r, train, test, seed=s, **kwargs), "order": k})
    return pd.DataFrame(rows)


def seconds_per_step(recipes: Sequence[Recipe], train: Split, *, steps: int, repeats: int, seed: int = 0
                     ) -> dict[str, float]:
    """Median training seconds per step of each recipe, measured interleaved: ``repeats`` rounds,
    each timing ``steps`` steps of every recipe in turn (no evaluation; model building excluded)."""
    if steps < 1 or repeats < 1:
        raise ValueError(f"steps and repeats must be >= 1, got {steps} and {repeats}")
    x, y = train
    times: dict[str, list[float]] = {r.name: [] for r in recipes}
    probe = (x[:1], y[:1])
    for _ in range(repeats):
        for r in recipes:
            short = r.but(r.name, horizon=0, warmup=0, schedule="constant")
            out = run(short, train, probe, seed=seed, targets=[1.0], max_steps=steps, eval_every=steps)
            times[r.name].append((out["seconds"] - out["build_seconds"]) / steps)
    return {k: float(pd.Series(v).median()) for k, v in times.items()}


def ablate(base: Recipe, stages: Sequence[tuple[str, Sequence[Recipe | Callable[[Recipe], Recipe]]]],
           decide: Callable[[Recipe, pd.DataFrame, Recipe, pd.DataFrame], bool], train: Split, test: Split, *,
           seeds: Sequence[int], **kwargs: Any) -> tuple[Recipe, pd.DataFrame]:
    """Greedy forward ablation: at each stage, run its candidates (recipes, or functions of the
    incumbent) for ``seeds``; ``decide(candidate, candidate_rows, incumbent, incumbent_rows)``
    says whether a candidate beats the incumbent; the fastest (lowest mean steps) of the
    winners becomes the incumbent. The incumbent's runs are reused, not repeated (same recipe
    and seed, same steps); ``kwargs`` go to :func:`run`, and ``decide`` should read the steps
    of the lowest target. Returns the last incumbent and all rows (``stage``, ``kept``,
    ``incumbent``)."""
    incumbent = base
    inc_rows = run_seeds(base, train, test, seeds, **kwargs).assign(stage="reference", kept=True)
    frames = [inc_rows]
    steps_key = next(k for k in inc_rows if k.startswith("steps@"))
    for stage, candidates in stages:
        tried = []
        for c in candidates:
            recipe = c(incumbent) if callable(c) and not isinstance(c, Recipe) else c
            rows = run_seeds(recipe, train, test, seeds, **kwargs).assign(stage=stage, kept=False)
            tried.append((recipe, rows, bool(decide(recipe, rows, incumbent, inc_rows))))
        winners = [t for t in tried if t[2]]
        if winners:
            best = min(winners, key=lambda t: t[1][steps_key].mean())
            incumbent, inc_rows = best[0], best[1].assign(kept=True)
            tried = [(r, inc_rows if r is best[0] else rows, w) for r, rows, w in tried]
        frames += [rows.assign(incumbent=incumbent.name) for _, rows, _ in tried]
    return incumbent, pd.concat(frames, ignore_index=True)
