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
same whichever helper or order runs it.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from ..callbacks import (AdaptiveGradientClipping, DeadUnitMonitor, DivergenceGuard, GradNormMonitor,
                         StepHistory, layer_grad_norms)
from ..models import MLP
from ..module import Classifier
from ..seeding import seed_everything
from ..training import fit, train_seeds
from .initialization import geometric_rate

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
    R² and the ratio of the first layer's norm to the last one's ("first / last").
    ``table`` is one network's rows of :func:`grad_norms_at_init`, input to output.
    """
    fit_rows = table[table.layer >= 2]
    logs = np.log(fit_rows.grad_norm.to_numpy())
    r2 = np.corrcoef(fit_rows.layer, logs)[0, 1] ** 2
    return pd.Series({"shrink per layer": 1 / geometric_rate(fit_rows.grad_norm), "R²": r2,
                      "first / last": table.grad_norm.iloc[0] / table.grad_norm.iloc[-1]})


def shrink_table(norms: pd.DataFrame, by: Sequence[str] = ("activation", "seed")) -> pd.DataFrame:
    """:func:`shrink_fit` for every network (one row per ``by`` group) of ``norms``."""
    return norms.groupby(list(by)).apply(shrink_fit, include_groups=False).reset_index()


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
    """Adam at a large rate on a He-initialized MLP, counting units inactive on all of ``probe``.

    ``variants`` maps a name to ``(activation, initial bias of the hidden layers)``: a
    small positive bias so units start active (Goodfellow et al. 2016, §6.3.1), or an
    activation with a gradient below zero (Lu et al. 2020). Returns the
    :class:`~accel.callbacks.DeadUnitMonitor` rows of every run (step, layer, name, dead,
    variant, seed) and one summary row per run: the final dead fraction (mean over
    layers), final training loss and test accuracy.
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
            curves.append(monitor.frame().assign(variant=name, seed=s))
            summary.append({"variant": name, "seed": s, "dead": monitor.final().dead.mean(),
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
    clipping changed the gradient, the largest total gradient norm, and the median norm
    over the second half of the steps.

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


# ---------------------------------------------------------------- divergence and recovery


def guard_run(datamodule: pl.LightningDataModule, epochs: int, seed: int, spike_step: int, spike: float,
              guard: DivergenceGuard | None = None, *, depth: int = 3, width: int = 128,
              lr: float = 0.05, spike_length: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A ReLU MLP trained with SGD + momentum whose rate is multiplied by ``spike`` for
    ``spike_length`` steps from ``spike_step`` (a stand-in for the loss spikes of large
    runs, Zhang et al. 2022), optionally under ``guard``. Returns the per-step losses and
    rates (:class:`~accel.callbacks.StepHistory`) and the per-epoch history."""
    seed_everything(seed)
    net = MLP(datamodule.num_features, [width] * depth, datamodule.num_classes, activation="relu", init="he_normal")
    spike_schedule = {"name": "spike", "start": spike_step, "length": spike_length, "factor": spike}
    module = Classifier(net, {"name": "momentum", "lr": lr}, spike_schedule)
    steps = StepHistory()
    datamodule.seed = seed
    hist = fit(module, datamodule, epochs, callbacks=[steps] + ([guard] if guard else []))
    return steps.frame(), hist


def guard_demo(datamodule: pl.LightningDataModule, guard: DivergenceGuard, epochs: int, seed: int,
               spike_step: int, spike: float = 40.0, **kwargs: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three runs from the same seed: no spike, the spike, the spike under ``guard``.

    Returns the per-step and per-epoch tables of all three, with a ``run`` column
    ("no spike", "spike, no guard", "spike + DivergenceGuard").
    """
    arms = (("no spike", 1.0, None), ("spike, no guard", spike, None), ("spike + DivergenceGuard", spike, guard))
    steps, epochs_ = [], []
    for name, factor, g in arms:
        s, h = guard_run(datamodule, epochs, seed, spike_step, factor, g, **kwargs)
        steps.append(s.assign(run=name))
        epochs_.append(h.assign(run=name))
    return pd.concat(steps, ignore_index=True), pd.concat(epochs_, ignore_index=True)
