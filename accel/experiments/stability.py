"""Stability experiments (chapter 7): vanishing gradients through depth, dying ReLU,
gradient clipping on a deep plain network, and recovery from a divergence.

Backpropagation multiplies one Jacobian ``diag(φ'(z)) Wᵀ`` per layer, so the gradient of
the first layer is scaled by about ``(‖W‖·|φ'|)^L`` (Hochreiter et al. 1998; Glorot &
Bengio 2010): the sigmoid's ``σ' ≤ 1/4`` makes it vanish geometrically. A large step can
also throw the weights off a cliff of the loss (Pascanu et al. 2013), which clipping
(norm clipping there; unit-wise AGC in Brock et al. 2021) or a rollback with a lower
learning rate (the OPT-175B logbook, Zhang et al. 2022) are meant to prevent or repair.

Every run seeds the global RNG before building its network and sets the data module's
``seed`` (the data order), as :func:`accel.training.train_seeds` does, so a run is the
same whichever helper or order runs it, and two arms with the same seed share their
initial weights (where the architecture is the same) and their data order: paired.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.callbacks import EarlyStopping
from torch import nn

from ..callbacks import (AdaptiveGradientClipping, DeadUnitMonitor, DivergenceGuard, GradNormMonitor,
                         StepHistory, layer_grad_norms)
from ..models import MLP
from ..module import Classifier
from ..seeding import seed_everything
from ..training import fit, train_seeds
from .initialization import geometric_rate

LN10 = math.log(10)  # the cross-entropy of a uniform guess over 10 classes
FLAT_TOL = 0.05      # nats: a training loss that fell less over the last 10 % of epochs is flat

# ---------------------------------------------------------------- vanishing gradients


def grad_norms_at_init(datamodule: pl.LightningDataModule, x: torch.Tensor, y: torch.Tensor,
                       activations: Mapping[str, str], depth: int, width: int,
                       seeds: Iterable[int]) -> pd.DataFrame:
    """‖∂L/∂W_l‖ of every hidden layer of a fresh ``depth``×``width`` MLP, on one batch.

    ``activations`` maps an activation to the initialization designed for it (Xavier for
    sigmoid/tanh, He for ReLU), so that only φ' differs between arms. One row per
    activation × seed × hidden layer (the head is dropped): the columns of
    :func:`accel.callbacks.layer_grad_norms` plus ``activation`` and ``seed``.
    """
    seeds = list(seeds)
    rows = []
    for act, init in activations.items():
        for s in seeds:
            seed_everything(s)
            net = MLP(datamodule.num_features, [width] * depth, datamodule.num_classes, activation=act, init=init)
            F.cross_entropy(net(x), y).backward()
            rows.append(layer_grad_norms(net).assign(activation=act, seed=s))
    norms = pd.concat(rows, ignore_index=True)
    return norms[norms.layer <= depth]


def shrink_fit(table: pd.DataFrame) -> pd.Series:
    """The per-layer factor by which one network's gradient shrinks towards the input.

    Fits ``log ‖∂L/∂W_l‖ ≈ a + l·log r`` over layers 2.. (layer 1 sees the raw features,
    not activations of the same width) and returns ``1/r`` ("shrink per layer"), the fit's
    R² and the ratio of layer 2's norm to the last layer's ("layer 2 / last"): the same
    span of layers as the fit, so the two numbers describe one thing.
    ``table`` is one network's rows of :func:`grad_norms_at_init`, input to output.
    """
    fit_rows = table[table.layer >= 2]
    logs = np.log(fit_rows.grad_norm.to_numpy())
    r2 = np.corrcoef(fit_rows.layer, logs)[0, 1] ** 2
    return pd.Series({"shrink per layer": 1 / geometric_rate(fit_rows.grad_norm), "R²": r2,
                      "layer 2 / last": fit_rows.grad_norm.iloc[0] / fit_rows.grad_norm.iloc[-1]})


def shrink_table(norms: pd.DataFrame, by: Sequence[str] = ("activation", "seed")) -> pd.DataFrame:
    """:func:`shrink_fit` for every network (one row per ``by`` group) of ``norms``."""
    return norms.groupby(list(by)).apply(shrink_fit, include_groups=False).reset_index()


def farthest_from_level(shrink: Sequence[float]) -> float:
    """The factor farthest from 1 on a log scale (the worst seed for "gradients stay level")."""
    s = np.asarray(shrink, dtype=float)
    return float(s[np.argmax(np.abs(np.log(s)))])


def train_deep(datamodule: pl.LightningDataModule, activation: str, init: str, epochs: int,
               seeds: Iterable[int], *, depth: int = 10, width: int = 128, lr: float = 0.05) -> pd.DataFrame:
    """Per-epoch histories of a deep MLP trained with SGD + momentum 0.9 (``activation`` column set).

    Plain SGD rather than an adaptive optimizer, which would rescale each weight's step by
    its own gradient history and partly hide the vanishing.
    """
    def build() -> Classifier:
        net = MLP(datamodule.num_features, [width] * depth, datamodule.num_classes, activation=activation,
                  init=init)
        return Classifier(net, {"name": "momentum", "lr": lr})

    return train_seeds(build, datamodule, epochs, seeds, activation=activation)


# ---------------------------------------------------------------- dying ReLU


def dying_runs(datamodule: pl.LightningDataModule, probe: torch.Tensor, variants: Mapping[str, tuple[str, float]],
               epochs: int, seeds: Iterable[int], *, depth: int = 4, width: int = 128, lr: float = 0.02,
               every: int = 8) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Adam on a He-initialized MLP, counting units inactive on all of ``probe`` from initialization on.

    ``variants`` maps a name to ``(activation, initial bias of the hidden layers)``: a
    small positive bias so units start active (Goodfellow et al. 2016, §6.3.1), or an
    activation with a gradient below zero (Lu et al. 2020). Variants with the same seed
    share their weights at initialization (only the bias or φ differs) and their data
    order. Returns the :class:`~accel.callbacks.DeadUnitMonitor` rows of every run (step,
    layer, name, dead, mostly_active, variant, seed; step 0 is the initialization) and one
    summary row per run, each a mean over layers: ``dead_init``/``mostly_active_init`` (at
    step 0), ``dead_mean`` (over every measurement of the run), ``dead`` (the last one),
    and the final training loss and test accuracy.
    """
    seeds = list(seeds)
    curves, summary = [], []
    for name, (act, bias) in variants.items():
        def build() -> Classifier:
            net = MLP(datamodule.num_features, [width] * depth, datamodule.num_classes, activation=act,
                      init="he_normal")
            for layer in net.hidden_layers():
                nn.init.constant_(layer.bias, bias)
            return Classifier(net, {"name": "adam", "lr": lr})

        monitors: list[DeadUnitMonitor] = []

        def callbacks() -> list[pl.Callback]:
            monitors.append(DeadUnitMonitor(probe, every=every))
            return [monitors[-1]]

        history = train_seeds(build, datamodule, epochs, seeds, callbacks=callbacks)
        for s, monitor in zip(seeds, monitors):
            hist = history[history.seed == s]
            frame = monitor.frame()
            per_step = frame.groupby("step")[["dead", "mostly_active"]].mean()
            curves.append(frame.assign(variant=name, seed=s))
            summary.append({"variant": name, "seed": s, "dead_init": per_step.dead.iloc[0],
                            "mostly_active_init": per_step.mostly_active.iloc[0],
                            "dead_mean": per_step.dead.mean(), "dead": per_step.dead.iloc[-1],
                            "train_loss": hist.train_loss.iloc[-1], "test_acc": hist.val_acc.iloc[-1]})
    return pd.concat(curves, ignore_index=True), pd.DataFrame(summary)


# ---------------------------------------------------------------- exploding gradients, clipping


def clip_run(datamodule: pl.LightningDataModule, spec: Mapping[str, float], epochs: int, seed: int, *,
             depth: int = 20, width: int = 64, lr: float = 0.15) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One run of a deep plain ReLU MLP (He init, no normalization), SGD + momentum at ``lr``.

    ``spec`` is ``{}`` (no clipping), ``{"clip": c}`` (Lightning's norm clipping at c over
    all parameters, Pascanu et al. 2013) or ``{"agc": λ}`` (adaptive gradient clipping,
    Brock et al. 2021). Returns the per-step trace (step, epoch, loss, lr, norm_before,
    norm_after, clipped; loss and gradient norm of the same update on one row) and a
    summary: final training loss and test accuracy, the fraction of steps on which
    clipping changed the gradient, the largest and the median total gradient norm, and
    the median over the second half of the steps.

    Seeds as :func:`accel.training.train_seeds` does; that helper is not used because it
    passes no Trainer arguments (``gradient_clip_val``).
    """
    if set(spec) - {"clip", "agc"}:
        raise ValueError(f"a clipping spec has 'clip' or 'agc', got {dict(spec)}")
    seed_everything(seed)
    net = MLP(datamodule.num_features, [width] * depth, datamodule.num_classes, activation="relu", init="he_normal")
    monitor, steps = GradNormMonitor(every=10_000), StepHistory()
    # the monitor reads the norm before AGC acts, so it comes first
    callbacks = [monitor] + ([AdaptiveGradientClipping(spec["agc"])] if "agc" in spec else []) + [steps]
    trainer_kw = {"gradient_clip_val": spec["clip"], "gradient_clip_algorithm": "norm"} if "clip" in spec else {}
    datamodule.seed = seed
    hist = fit(Classifier(net, {"name": "momentum", "lr": lr}), datamodule, epochs, callbacks=callbacks,
               **trainer_kw)
    norms = monitor.steps
    trace = steps.frame().merge(norms, on="step")
    return trace, {"train_loss": hist.train_loss.iloc[-1], "test_acc": hist.val_acc.iloc[-1],
                   "clipped": monitor.clipped_fraction(), "max_norm": norms.norm_before.max(),
                   "median_norm": norms.norm_before.median(),
                   "late_median_norm": norms.norm_before.iloc[len(norms) // 2:].median()}


def clip_runs(datamodule: pl.LightningDataModule, methods: Mapping[str, Mapping[str, float]], epochs: int,
              seeds: Iterable[int], **kwargs: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`clip_run` for every method × seed: the stacked traces and one summary row per run
    (both with ``method`` and ``seed`` columns)."""
    seeds = list(seeds)
    traces, summary = [], []
    for name, spec in methods.items():
        for s in seeds:
            trace, row = clip_run(datamodule, spec, epochs, s, **kwargs)
            traces.append(trace.assign(method=name, seed=s))
            summary.append({"method": name, "seed": s, **row})
    return pd.concat(traces, ignore_index=True), pd.DataFrame(summary)


def rare_threshold(traces: pd.DataFrame, multiple: float = 3.0) -> float:
    """A clipping threshold above the typical step: ``multiple`` × the median total gradient norm
    of unclipped training (Pascanu et al. 2013 set the threshold from the norm's statistics
    over many updates). ``traces`` are unclipped :func:`clip_run` traces."""
    if not multiple > 0 or traces.empty:
        raise ValueError(f"need unclipped traces and a positive multiple, got {len(traces)} rows, {multiple}")
    return float(multiple * traces.norm_before.median())


# ---------------------------------------------------------------- divergence and recovery

GUARD_ARMS = ("no spike", "spike, no guard", "guard, rate kept", "guard, rate restored")


@dataclass
class GuardRuns:
    """The runs of :func:`guard_runs`, each table with ``run`` and ``seed`` columns."""
    steps: pd.DataFrame    # step, epoch, loss, lr (every update)
    epochs: pd.DataFrame   # the per-epoch history
    events: pd.DataFrame   # the guards' rows: step, action, loss, reference, restored_step, lr_scale, new_lr


def guard_runs(datamodule: pl.LightningDataModule, seeds: Iterable[int], epochs: int, spike_step: int,
               spike: float = 40.0, *, guard: Mapping[str, Any], restore_after: int = 50, depth: int = 3,
               width: int = 128, lr: float = 0.05, spike_length: int = 10,
               arms: Sequence[str] = GUARD_ARMS) -> GuardRuns:
    """A ReLU MLP trained with SGD + momentum whose rate is multiplied by ``spike`` for
    ``spike_length`` steps from ``spike_step`` (a stand-in for the loss spikes of large runs,
    Zhang et al. 2022), in up to four arms per seed (:data:`GUARD_ARMS`): without the spike
    (the reference), with it and no guard, and under a :class:`DivergenceGuard` built from
    ``guard`` (its keyword arguments) that keeps the lowered rate or raises it again after
    ``restore_after`` healthy steps. The guards are quiet (``verbose=False``): their rows
    are returned as ``events``.

    The unguarded arm stops at the end of the first epoch whose mean training loss is not
    finite (Lightning's ``EarlyStopping(check_finite=True)``): a non-finite loss gives
    non-finite gradients, hence non-finite weights, which no later update can repair, so
    its remaining epochs would repeat the same outputs.
    """
    unknown = set(arms) - set(GUARD_ARMS)
    if unknown:
        raise ValueError(f"unknown arms {sorted(unknown)}; valid: {', '.join(GUARD_ARMS)}")
    seeds = list(seeds)
    steps, histories, events = [], [], []
    for arm in arms:
        factor = 1.0 if arm == "no spike" else spike
        schedule = {"name": "spike", "start": spike_step, "length": spike_length, "factor": factor}

        def build() -> Classifier:
            net = MLP(datamodule.num_features, [width] * depth, datamodule.num_classes, activation="relu",
                      init="he_normal")
            return Classifier(net, {"name": "momentum", "lr": lr}, schedule)

        made: list[tuple[StepHistory, DivergenceGuard | None]] = []

        def callbacks() -> list[pl.Callback]:
            g = None
            if arm.startswith("guard"):
                g = DivergenceGuard(**{**guard, "verbose": False,
                                       "restore_after": restore_after if arm.endswith("restored") else None})
            made.append((StepHistory(), g))
            stop = [EarlyStopping(monitor="train_loss", patience=10 ** 9, check_finite=True, check_on_train_epoch_end=True)]
            return [made[-1][0]] + ([g] if g else []) + (stop if arm == "spike, no guard" else [])

        histories.append(train_seeds(build, datamodule, epochs, seeds, callbacks=callbacks, run=arm))
        for s, (history, g) in zip(seeds, made):
            steps.append(history.frame().assign(run=arm, seed=s))
            if g is not None:
                events.append(g.frame().assign(run=arm, seed=s))
    columns = list(DivergenceGuard.columns) + ["run", "seed"]
    return GuardRuns(pd.concat(steps, ignore_index=True), pd.concat(histories, ignore_index=True),
                     pd.concat(events, ignore_index=True) if events else pd.DataFrame(columns=columns))


def loss_flat(history: pd.DataFrame, fraction: float = 0.1, tol: float = FLAT_TOL) -> bool:
    """Whether one run's training loss has stopped falling: over the last ``fraction`` of its
    epochs (at least two epochs apart) it fell by less than ``tol`` (nats)."""
    loss = history.sort_values("epoch").train_loss.to_numpy()
    span = max(2, math.ceil(fraction * len(loss)))
    if len(loss) <= span or not np.isfinite(loss[-span - 1:]).all():
        return False
    return bool(loss[-span - 1] - loss[-1] < tol)


def guard_summary(runs: GuardRuns, spike_step: int, window: int = 20) -> pd.DataFrame:
    """One row per run and seed: final training loss and test accuracy, the median loss of the
    ``window`` steps before the spike, whether the training loss is flat at the end
    (:func:`loss_flat`), the first rollback's delay after the spike's start (in steps), the
    number of rollbacks and of raises, and the learning rate of the last update."""
    rows = []
    for (run, seed), hist in runs.epochs.groupby(["run", "seed"], sort=False):
        steps = runs.steps[(runs.steps.run == run) & (runs.steps.seed == seed)].set_index("step")
        ev = runs.events[(runs.events.run == run) & (runs.events.seed == seed)]
        rollbacks = ev[ev.action == "rollback"]
        last = hist.sort_values("epoch").iloc[-1]
        rows.append({"run": run, "seed": seed, "train_loss": last.train_loss, "test_acc": last.val_acc,
                     "epochs": int(last.epoch),
                     "pre_spike_loss": float(steps.loss.loc[spike_step - window:spike_step - 1].median()),
                     "flat": loss_flat(hist),
                     "delay": float(rollbacks.step.min() - spike_step) if len(rollbacks) else float("nan"),
                     "rollbacks": len(rollbacks), "raises": int((ev.action == "raise lr").sum()),
                     "final_lr": float(steps.lr.iloc[-1])})
    return pd.DataFrame(rows)


def times(counts: Iterable[int]) -> str:
    """How often, in words, over seeds: "twice", "2 to 3 times", "once" (for the prose)."""
    c = sorted(set(int(n) for n in counts))
    if not c:
        raise ValueError("no counts")
    word = {0: "never", 1: "once", 2: "twice"}
    if len(c) == 1:
        return word.get(c[0], f"{c[0]} times")
    return f"{c[0]} to {c[-1]} times"
