"""Resuming and warm-starting runs (chapter 9): what a continuation keeps, and what it loses.

The sources' "bonus knob": save snapshots of the weights and resume from them, "carefully
initializing the learning rate now". Every run of one seed shares the initial weights
and the data order (as :func:`accel.training.train_seeds` seeds them), so an arm that
continues from a checkpoint sees exactly the batches the uninterrupted run saw, and two
arms can be compared batch by batch.

* :func:`base_runs` trains one run per seed under Lightning's ``ModelCheckpoint``;
* :func:`resume_arms` continues each from a mid-run checkpoint with the whole state
  (``Trainer.fit(ckpt_path=...)``) and with the weights alone (a fresh optimizer and a
  schedule that starts again);
* :func:`continuation_arms` continues each from its final checkpoint for more epochs,
  keeping the optimizer's state (:class:`accel.warm_start.WarmStart`) under several new
  schedules (Gupta et al. 2023 on re-warming);
* :func:`rise_table` reads the damage from the per-epoch histories: how far the training
  loss rose above the checkpoint's, and how many epochs it took to get back.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ..callbacks.history import StepHistory
from ..module import Classifier
from ..seeding import seed_everything
from ..training import fit
from ..warm_start import DataOrder, WarmStart, fit_checkpointed, load_weights, resume


@dataclass
class BaseRuns:
    """Per seed: the per-epoch history, the per-update log and the checkpoint files by epoch."""

    history: pd.DataFrame
    steps: pd.DataFrame
    files: dict[int, dict[int, Path]] = field(default_factory=dict)


def _seeded(datamodule: Any, seed: int) -> None:
    seed_everything(seed)
    if hasattr(datamodule, "seed"):
        datamodule.seed = seed


def base_runs(spec: Mapping[str, Any], datamodule: Any, epochs: int, seeds: Sequence[int], root: str | Path, *,
              every_n_epochs: int) -> BaseRuns:
    """One checkpointed run per seed of ``Classifier(**spec)``, saved every ``every_n_epochs`` epochs.

    ``spec`` holds the module's ``model`` (a dict, so a checkpoint rebuilds it),
    ``optimizer`` and ``schedule``. Checkpoints go to ``root/seed<s>/``.
    """
    histories, logs, files = [], [], {}
    for s in seeds:
        _seeded(datamodule, s)
        log = StepHistory()
        history, saved = fit_checkpointed(Classifier(**spec), datamodule, epochs, Path(root) / f"seed{s}",
                                          every_n_epochs=every_n_epochs, callbacks=[log])
        histories.append(history.assign(seed=s))
        logs.append(log.frame().assign(seed=s))
        files[s] = saved
    return BaseRuns(pd.concat(histories, ignore_index=True), pd.concat(logs, ignore_index=True), files)


def resume_arms(spec: Mapping[str, Any], datamodule: Any, epochs: int, base: BaseRuns, at: int, *,
                exact_seeds: Sequence[int] | None = None, keep_optimizer: bool = False
                ) -> tuple[pd.DataFrame, pd.DataFrame, dict[int, float]]:
    """Continue every base run from its checkpoint after ``at`` epochs until ``epochs``, two ways.

    * ``whole state``: :func:`accel.warm_start.resume` (weights, optimizer, scheduler,
      loops, callbacks), for the seeds in ``exact_seeds`` (default: all);
    * ``weights only``: :func:`accel.warm_start.load_weights`, then a new fit of
      ``epochs − at`` epochs: a fresh optimizer (Adam's moments at zero) and the schedule
      from its first step, spread over the remaining epochs, as a new fit of the same
      module gets it. Its batches are the uninterrupted run's
      (:class:`accel.warm_start.DataOrder`), so only the restored state differs;
    * ``weights + optimizer state`` (with ``keep_optimizer``): as weights only, but with
      the checkpoint's optimizer state (:class:`accel.warm_start.WarmStart`), so that
      only the schedule restarts: the difference to ``weights only`` is Adam's moments.

    Returns the per-epoch histories and per-update logs of both arms (``arm`` and ``seed``
    columns; epochs and updates numbered as in the original run), and, per resumed seed,
    the largest absolute difference between its final weights and the uninterrupted run's.
    """
    if not 1 <= at < epochs:
        raise ValueError(f"need 1 <= at < epochs, got at={at}, epochs={epochs}")
    histories, logs, weight_diff = [], [], {}
    exact = list(base.files) if exact_seeds is None else list(exact_seeds)
    for s, saved in base.files.items():
        if at not in saved or epochs not in saved:
            raise ValueError(f"seed {s} has checkpoints after epochs {sorted(saved)}; need {at} and {epochs}")
        spe = int(base.history.query("seed == @s").step.iloc[0] // base.history.query("seed == @s").epoch.iloc[0])
        if s in exact:
            _seeded(datamodule, s)
            log = StepHistory()
            module = Classifier(**spec)
            h = resume(module, datamodule, epochs, saved[at], callbacks=[log])
            end = torch.load(str(saved[epochs]), map_location="cpu", weights_only=True)["state_dict"]
            weight_diff[s] = max(float((module.state_dict()[k] - v).abs().max()) for k, v in end.items())
            histories.append(h.assign(arm="whole state", seed=s))
            logs.append(log.frame().query("step >= @at * @spe").assign(arm="whole state", seed=s))
        _seeded(datamodule, s)
        log = StepHistory()
        h = fit(load_weights(saved[at]), datamodule, epochs - at, callbacks=[log, DataOrder(at)])
        h, frame = _shift(h, log.frame(), at, spe)
        histories.append(h.assign(arm="weights only", seed=s))
        logs.append(frame.assign(arm="weights only", seed=s))
        if keep_optimizer:
            _seeded(datamodule, s)
            log = StepHistory()
            h = fit(Classifier(**spec), datamodule, epochs - at,
                    callbacks=[WarmStart(saved[at]), log, DataOrder(at)])
            h, frame = _shift(h, log.frame(), at, spe)
            histories.append(h.assign(arm="weights + optimizer state", seed=s))
            logs.append(frame.assign(arm="weights + optimizer state", seed=s))
    return pd.concat(histories, ignore_index=True), pd.concat(logs, ignore_index=True), weight_diff


def _shift(history: pd.DataFrame, steps: pd.DataFrame, epochs: int, steps_per_epoch: int
           ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Number a continuation's epochs and updates as the original run's (it started after ``epochs``)."""
    offset = epochs * steps_per_epoch
    return (history.assign(epoch=history.epoch + epochs, step=history.step + offset),
            steps.assign(step=steps.step + offset, epoch=steps.epoch + epochs))


def continuation_arms(spec: Mapping[str, Any], datamodule: Any, base: BaseRuns, at: int, epochs: int,
                      schedules: Mapping[str, tuple[float, dict[str, Any] | None]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train every base run ``epochs`` more epochs from its checkpoint after ``at`` epochs, once per schedule.

    ``schedules`` maps an arm's name to ``(peak learning rate, schedule spec)``. Each arm
    keeps the checkpoint's weights and optimizer state (Adam's moments and step count,
    :class:`accel.warm_start.WarmStart`) and uses only its own rates. Returns the
    per-epoch histories and per-update logs (``arm`` and ``seed`` columns; epochs and
    updates continue the original run's numbering).
    """
    histories, logs = [], []
    for s, saved in base.files.items():
        if at not in saved:
            raise ValueError(f"seed {s} has checkpoints after epochs {sorted(saved)}; need {at}")
        spe = int(base.history.query("seed == @s").step.iloc[0] // base.history.query("seed == @s").epoch.iloc[0])
        for name, (lr, schedule) in schedules.items():
            _seeded(datamodule, s)
            module = Classifier(spec["model"], {**spec["optimizer"], "lr": lr}, schedule)
            log = StepHistory()
            h = fit(module, datamodule, epochs, callbacks=[WarmStart(saved[at]), log, DataOrder(at)])
            h, frame = _shift(h, log.frame(), at, spe)
            histories.append(h.assign(arm=name, seed=s))
            logs.append(frame.assign(arm=name, seed=s))
    return pd.concat(histories, ignore_index=True), pd.concat(logs, ignore_index=True)


def rise_table(history: pd.DataFrame, reference: pd.DataFrame, at: int, metric: str = "train_loss"
               ) -> pd.DataFrame:
    """Per arm and seed: how far ``metric`` rose above its value at the checkpoint, and how long it took back.

    ``reference`` holds the original runs' histories (``seed``, ``epoch``, ``metric``); the
    checkpoint's value is the reference's at epoch ``at``. ``rise``: the largest value over
    the continuation's epochs minus the checkpoint's (≤ 0: it never rose). ``recover``:
    the continuation epochs until the value is back at or below the checkpoint's (1 if the
    first epoch already is); a run that never gets back has ``recover`` = its length and
    ``censored`` True (a lower bound). ``final``: the value at the continuation's end.
    """
    start = reference[reference.epoch == at].set_index("seed")[metric]
    rows = []
    for (arm, s), run in history.sort_values("epoch", kind="stable").groupby(["arm", "seed"], sort=False):
        if s not in start.index:
            raise ValueError(f"no reference value at epoch {at} for seed {s}")
        values = run[metric].to_numpy(dtype=float)
        back = np.flatnonzero(values <= start[s])
        rows.append({"arm": arm, "seed": s, "checkpoint": float(start[s]), "rise": float(np.max(values) - start[s]),
                     "recover": int(back[0] + 1) if len(back) else len(values), "censored": not len(back),
                     "final": float(values[-1])})
    return pd.DataFrame(rows)


def batch_excess(steps: pd.DataFrame, reference: pd.DataFrame, first: int, window: int) -> pd.DataFrame:
    """Per arm and seed: the mean and the largest excess of the per-batch loss over the reference run's,
    on the same batches (updates ``first .. first + window − 1``)."""
    if window < 1:
        raise ValueError(f"window must be a positive number of updates, got {window!r}")
    ref = reference.set_index(["seed", "step"])["loss"]
    rows = []
    for (arm, s), log in steps.groupby(["arm", "seed"], sort=False):
        part = log[(log.step >= first) & (log.step < first + window)].set_index("step")["loss"]
        if len(part) != window:
            raise ValueError(f"{arm}, seed {s}: updates {first}..{first + window - 1} are not all logged")
        diff = part.to_numpy() - ref.loc[s].loc[part.index].to_numpy()
        rows.append({"arm": arm, "seed": s, "mean_excess": float(diff.mean()), "max_excess": float(diff.max())})
    return pd.DataFrame(rows)
