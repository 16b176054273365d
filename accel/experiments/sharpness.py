"""The edge of stability: a network's sharpness under full-batch gradient descent.

Cohen et al. (2021, "Gradient descent on neural networks typically occurs at the edge
of stability") train networks with full-batch GD at step η and track the top Hessian
eigenvalue λmax (the *sharpness*): it rises ("progressive sharpening") until it reaches
2/η, GD's stability threshold on a quadratic, then hovers there while the loss keeps
falling, non-monotonically. :func:`sharpness_runs` trains one network per learning rate
from the same initialization; :func:`sharpening_summary` reads one run's two records.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import pandas as pd
from torch import nn

from ..callbacks.curvature import TopHessianEigenvalue, edge_of_stability
from ..callbacks.history import StepHistory
from ..data import TensorDataModule
from ..losses import one_hot_mse
from ..module import Classifier
from ..seeding import seed_everything
from ..training import make_trainer


def sharpness_runs(build: Callable[[], nn.Module], datamodule: TensorDataModule, lrs: Sequence[float],
                   steps: int, every: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Full-batch GD with the square loss at each of ``lrs``; the sharpness and the loss per run.

    ``datamodule`` must serve its whole training set as one batch, so that ``steps``
    epochs are ``steps`` GD steps. Every run seeds everything with ``seed`` before
    ``build()`` (the same initial network for every rate) and trains on the CPU. The
    sharpness is measured on the full training set every ``every`` steps (Lanczos), the
    training loss every ``every // 5``. Returns the two records stacked, with an ``lr`` column.
    """
    full_batch = (datamodule.x_train, datamodule.y_train)
    sharp_frames, loss_frames = [], []
    for lr in lrs:
        seed_everything(seed)
        module = Classifier(build(), {"name": "sgd", "lr": lr}, loss="mse")
        sharp = TopHessianEigenvalue(every=every, batch=full_batch, loss_fn=one_hot_mse, seed=seed)
        history = StepHistory(every=max(1, every // 5))
        make_trainer(steps, [sharp, history], limit_val_batches=0, accelerator="cpu").fit(module, datamodule=datamodule)
        sharp_frames.append(sharp.frame().assign(lr=lr))
        loss_frames.append(history.frame().assign(lr=lr))
    return pd.concat(sharp_frames, ignore_index=True), pd.concat(loss_frames, ignore_index=True)


def sharpening_summary(sharpness: pd.DataFrame, losses: pd.DataFrame, reach: float = 0.9) -> dict[str, float]:
    """One run's :func:`~accel.callbacks.curvature.edge_of_stability` numbers plus ``loss_rises``.

    ``loss_rises``: how often the training loss went up between consecutive recorded
    steps from the first step where λmax reached ``reach``·2/η on (Cohen et al.'s
    non-monotone descent at the edge of stability); NaN if the sharpness never got there
    or fewer than two losses were recorded after it. The count of rises is divided by
    the number of losses recorded from that step on, not by the number of consecutive
    pairs (one fewer), as the chapter has always computed it: slightly below the
    fraction of pairs, by a factor (n-1)/n.
    """
    s = edge_of_stability(sharpness, reach)
    start = s["first_step"] if math.isfinite(s["first_step"]) else math.inf
    after = losses[losses["step"] >= start]
    s["loss_rises"] = float((after["loss"].diff() > 0).mean()) if len(after) > 1 else float("nan")
    return s
