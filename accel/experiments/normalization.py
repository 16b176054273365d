"""Normalization experiments: learning-rate tolerance, tuned multi-seed runs that keep their
networks, and how a trained network's predictions depend on the statistics its norm layers use.

BatchNorm normalizes with the current batch's mean and variance in training and with
running averages in evaluation (Ioffe & Szegedy 2015, Sec. 3.1); its output for one
example is therefore a function of the examples sharing its batch, which LayerNorm,
computing statistics over one example's own features, avoids (Ba et al. 2016, Sec. 3).
The helpers here find the largest learning rate at which a network still trains
(Bjorck et al. 2018), tune one learning rate per arm with a ladder whose optimum must be
interior, and measure the train/eval and cross-example facts on trained networks (those
:func:`accel.training.run_seeds` keeps).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from torch import nn

from ..models.norm import predict
from ..training import train_seeds
from .tuning import edge_extension, ladder


class StopOnNonFinite(pl.Callback):
    """Stop a run at the first non-finite training loss and remember that it diverged.

    A diverged run has nothing more to say; stopping it saves the rest of its budget. The
    epoch's logged metrics are then incomplete, so read :attr:`diverged`, not the history.
    """

    def __init__(self) -> None:
        self.diverged = False

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None and not bool(torch.isfinite(loss.detach()).all()):
            self.diverged = True
            trainer.should_stop = True


def largest_trainable_lr(build: Callable[[float], pl.LightningModule], datamodule: pl.LightningDataModule,
                         epochs: int, seed: int, lrs: Sequence[float], below: float, **labels: Any) -> pd.DataFrame:
    """Scan ``lrs`` from the largest down and stop at the first rate at which the run trains.

    A run *trains* when it did not diverge and its mean training loss over the last epoch
    is finite and below ``below``; the first such rate from the top is, by definition, the
    largest grid rate that trains (Bjorck et al. 2018 compare networks by it), so the rates
    below it need not be run. Diverged runs are stopped at their first non-finite loss
    (:class:`StopOnNonFinite`). Rows: ``lr, train_loss, diverged, trains`` and ``labels``,
    one per rate tried, largest first.
    """
    if not lrs:
        raise ValueError("lrs must not be empty")
    rows = []
    for lr in sorted(lrs, reverse=True):
        stop = StopOnNonFinite()
        history = train_seeds(lambda: build(lr), datamodule, epochs, [seed], callbacks=lambda: [stop])
        loss = float(history["train_loss"].iloc[-1]) if "train_loss" in history and len(history) else math.nan
        ok = not stop.diverged and math.isfinite(loss) and loss < below
        rows.append({"seed": seed, "lr": float(lr), "train_loss": math.nan if stop.diverged else loss,
                     "diverged": stop.diverged, "trains": ok, **labels})
        if ok:
            break
    return pd.DataFrame(rows)


def lr_max_table(scans: pd.DataFrame, top: float, by: str = "norm") -> pd.DataFrame:
    """One row per (``by``, seed): ``lr_max`` (NaN when no rate trained) and ``censored``
    (it is the grid's top, so the true largest trainable rate is at least that: a lower bound)."""
    rows = []
    for (arm, seed), g in scans.groupby([by, "seed"], sort=False):
        ok = g[g.trains]
        lr = float(ok.lr.max()) if len(ok) else math.nan
        rows.append({by: arm, "seed": seed, "lr_max": lr, "censored": bool(np.isclose(lr, top))})
    return pd.DataFrame(rows)


def tune_arms(score: Callable[[str, float], float], arms: Sequence[str], centre: float, *, n: int = 3,
              step: float = 0.5, max_rounds: int = 3) -> pd.DataFrame:
    """One learning-rate ladder per arm, the same resolution for all, extended until each optimum is interior.

    Round 0 scores ``n`` rates ``step`` decades apart around ``centre`` for every arm; each
    later round adds one rate beyond the edge of every arm whose best rate is on that edge
    (:func:`accel.experiments.tuning.edge_extension`), for at most ``max_rounds`` rounds.
    ``score(arm, lr)`` trains once (on held-out data: :func:`accel.experiments.tuning.holdout`)
    and returns a score to maximize (NaN: diverged). Rows: ``arm, lr, score, round``.
    """
    if not isinstance(max_rounds, int) or max_rounds < 0:
        raise ValueError(f"max_rounds must be an int >= 0, got {max_rounds!r}")
    pending = {arm: ladder(centre, n, step) for arm in arms}
    rows: list[dict[str, Any]] = []
    for rnd in range(max_rounds + 1):
        rows += [{"arm": arm, "lr": float(lr), "score": float(score(arm, lr)), "round": rnd}
                 for arm, lrs in pending.items() for lr in lrs]
        table = pd.DataFrame(rows)
        pending = {}
        for arm in arms:
            t = table[table.arm == arm]
            lr = edge_extension(t.lr, t.score, step)
            if lr is not None:
                pending[arm] = [lr]
        if not pending:
            break
    return pd.DataFrame(rows).sort_values(["arm", "lr"], kind="stable", ignore_index=True)


def best_per_arm(trials: pd.DataFrame) -> pd.DataFrame:
    """Per arm (in order of appearance): the best ``lr`` and ``score``, whether that optimum is
    ``interior`` to the arm's grid, and the number of ``trials``."""
    rows = []
    for arm, t in trials.groupby("arm", sort=False):
        t = t.sort_values("lr")
        s = t.score.to_numpy(dtype=float)
        best = int(np.argmax(np.where(np.isfinite(s), s, -np.inf)))
        rows.append({"arm": arm, "lr": float(t.lr.iloc[best]), "score": float(s[best]),
                     "interior": bool(0 < best < len(t) - 1 and np.isfinite(s[best])), "trials": len(t)})
    return pd.DataFrame(rows)


def last_epochs_change(history: pd.DataFrame, fraction: float = 0.1, column: str = "train_loss") -> float:
    """Relative change of ``column`` over the last ``fraction`` of a run's epochs,
    (value before − value at the end) / value at the end: near 0 when the run has flattened."""
    h = history.sort_values("epoch")
    k = max(1, int(round(len(h) * fraction)))
    if len(h) <= k:
        return math.nan
    before, end = float(h[column].iloc[-k - 1]), float(h[column].iloc[-1])
    return (before - end) / end if end > 0 else math.nan


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows of ``logits`` whose argmax is the label ``y``."""
    return float((logits.argmax(1) == y).float().mean())


def train_eval_accuracies(net: nn.Module, x: torch.Tensor, y: torch.Tensor, shifted: torch.Tensor, *,
                          batch_sizes: Iterable[int] = (2, 8, 100), shifted_batch_size: int = 100) -> pd.DataFrame:
    """Test accuracy of ``net`` under each choice of normalization statistics at test time.

    Rows ``inputs, mode, accuracy``: on the clean inputs ``x`` in evaluation mode (``mode="eval"``:
    running statistics, as deployed) and in training mode with each test batch's own statistics
    for every size ``b`` in ``batch_sizes`` (``mode="batch<b>"``); on ``shifted`` (the same examples under a shift
    the network never saw) in evaluation mode and with batch statistics of
    ``shifted_batch_size``. Training mode runs on a copy (:func:`predict`), so the
    running statistics stay untouched. A batch-independent norm gives one accuracy in
    every mode of one input; BatchNorm's spread is its train/eval discrepancy.
    """
    rows = [dict(inputs="clean", mode="eval", accuracy=accuracy(predict(net, x), y))]
    for b in batch_sizes:
        rows.append(dict(inputs="clean", mode=f"batch{b}",
                         accuracy=accuracy(predict(net, x, batch_size=b, batch_stats=True), y)))
    rows.append(dict(inputs="shifted", mode="eval", accuracy=accuracy(predict(net, shifted), y)))
    rows.append(dict(inputs="shifted", mode=f"batch{shifted_batch_size}",
                     accuracy=accuracy(predict(net, shifted, batch_size=shifted_batch_size, batch_stats=True), y)))
    return pd.DataFrame(rows)


def mode_gap(net: nn.Module, x: torch.Tensor, batch_size: int = 2) -> float:
    """Largest |logit| difference between training mode (statistics of batches of
    ``batch_size``) and evaluation mode: 0 up to rounding for a norm without batch statistics."""
    return float((predict(net, x, batch_size=batch_size, batch_stats=True) - predict(net, x)).abs().max())


def changed_predictions(net: nn.Module, x: torch.Tensor, batch_size: int = 8, seed: int = 0) -> float:
    """Fraction of the predicted classes of ``x`` that change when ``x`` is classified twice,
    in training mode, in batches of ``batch_size``: once in its order, once after a random
    permutation (drawn from a generator seeded with ``seed``, not the global RNG).

    With batch statistics an example's output depends on its batch companions (Ba et al.
    2016, Sec. 3), so the fraction is above 0 for BatchNorm and exactly 0 for norms that
    use one example's own features (LayerNorm).
    """
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    a = predict(net, x, batch_size=batch_size, batch_stats=True).argmax(1)
    b = predict(net, x[perm], batch_size=batch_size, batch_stats=True).argmax(1)[torch.argsort(perm)]
    return float((a != b).float().mean())
