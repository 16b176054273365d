"""Fit a LightningModule with the book's defaults (quiet, deterministic, seeded), once or over seeds.

Over seeds, either one run after another (any module, per-seed callbacks) or, with
``ensemble=True``, all seeds at once as one stacked model (:mod:`accel.ensemble`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import pandas as pd
import pytorch_lightning as pl
import torch
from pytorch_lightning.profilers import PassThroughProfiler
from torch import nn
from torchmetrics import Metric

from .callbacks.history import History
from .device import accelerator_name, default_precision
from .ensemble import MemberData, MemberHistory, check_clipping, stack_classifiers
from .seeding import seed_everything

# Lightning's fixed costs per call, removed without changing what Lightning computes: the
# book's models take a few milliseconds a step, so Lightning's bookkeeping around a step or
# an epoch is a visible share of a chapter (benchmarks/throughput.py measures it against a
# plain loop). Each remedy removes work whose result is known in advance and falls back to
# Lightning's own code whenever its condition does not hold.

_NO_CONTEXT = contextlib.nullcontext()


class QuietProfiler(PassThroughProfiler):
    """Lightning's no-op profiler, without its cost.

    Lightning wraps every hook call (some 25 a step) in ``profiler.profile(name)``; the
    pass-through profiler's generator-based context manager costs more than the hooks.
    This one returns one shared, stateless ``nullcontext``. Pass ``profiler="simple"`` (or
    any Lightning profiler) to ``make_trainer`` to measure instead.
    """

    def profile(self, action_name: str) -> contextlib.nullcontext:  # type: ignore[override]
        return _NO_CONTEXT


@functools.cache
def _entry_points(group: str) -> Any:
    from importlib.metadata import entry_points
    return entry_points(group=group)


def _remember_callback_plugins() -> None:
    """Read the installed callback plugins once per process, not once per Trainer.

    Every ``Trainer()`` asks ``importlib.metadata`` for the entry points of Lightning's
    callback-factory group, which reads the metadata of every installed distribution
    (~8 ms, as much as a few hundred steps of the book's small models). The answer only
    changes when packages are installed, so it is kept for the process.
    """
    try:
        from lightning_fabric.utilities import registry
    except ImportError:  # pragma: no cover - a Lightning without this module
        return
    from importlib.metadata import entry_points
    if getattr(registry, "entry_points", None) is entry_points:
        registry.entry_points = _entry_points  # type: ignore[attr-defined]


_LEAVES = frozenset({bool, int, float, str, bytes, type(None), torch.device, torch.dtype})


def states_on(obj: Any, device: torch.device) -> bool:
    """Whether every tensor that ``apply_to_collection`` would reach in ``obj`` is on ``device``.

    It walks the same containers (mappings, lists and tuples, dataclass instances) without
    copying them; a nested torchmetrics ``Metric`` counts as not on the device, so its own
    ``to`` runs.
    """
    kind = type(obj)
    if kind in _LEAVES:
        return True
    if isinstance(obj, torch.Tensor):
        return obj.device == device
    if isinstance(obj, dict):
        return all(states_on(v, device) for v in obj.values()) if obj else True
    if isinstance(obj, (list, tuple)):
        return all(states_on(v, device) for v in obj)
    if isinstance(obj, Metric):
        return False
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return all(states_on(getattr(obj, f.name), device) for f in dataclasses.fields(obj))
    return True


def skip_needless_moves() -> None:
    """Let ``self.log`` skip moving a logged metric that is already on the value's device.

    Each ``LightningModule.log`` call ends in ``_ResultMetric.to(value.device)``, which
    rebuilds the metric's whole ``__dict__`` through ``apply_to_collection`` (deep-copying
    its metadata) even when every tensor is already there: about 0.6 ms of a 0.8 ms call,
    four calls an epoch for accel's module (measured on the 2-core machine). When
    :func:`states_on` says nothing would move, the move is skipped (``Tensor.to`` of a
    tensor on its device returns the tensor itself, so the states are the same objects
    either way); otherwise Lightning's ``to`` runs.
    """
    try:
        from pytorch_lightning.trainer.connectors.logger_connector.result import _ResultMetric
    except ImportError:  # pragma: no cover - a Lightning that moved the class
        return
    lightning_to = _ResultMetric.to
    if getattr(lightning_to, "skips_needless_moves", False):
        return

    @functools.wraps(lightning_to)
    def to(self: Any, *args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and not kwargs and isinstance(args[0], torch.device) and states_on(vars(self), args[0]):
            return self
        return lightning_to(self, *args, **kwargs)

    to.skips_needless_moves = True  # type: ignore[attr-defined]
    _ResultMetric.to = to  # type: ignore[method-assign]


def make_trainer(epochs: int, callbacks: Sequence[pl.Callback] = (), **kwargs: Any) -> pl.Trainer:
    """A Trainer without progress bars, loggers, checkpoints, summaries or profiling cost.

    Those are useful interactively but cost time per step in the book's small models;
    pass them through ``kwargs`` to turn them back on. ``devices``/``num_nodes``/
    ``strategy`` go straight to Lightning (DDP).
    """
    options: dict[str, Any] = dict(
        max_epochs=epochs, accelerator=accelerator_name(), devices=1, logger=False,
        enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False,
        deterministic=True, num_sanity_val_steps=0, profiler=QuietProfiler(),
    )
    options.update(kwargs)
    options.setdefault("precision", default_precision(options["accelerator"]))
    quiet_lightning()
    _remember_callback_plugins()
    skip_needless_moves()
    return pl.Trainer(callbacks=list(callbacks), **options)


def quiet_lightning() -> None:
    """Silence Lightning's per-Trainer banners (accelerator, tips) in notebooks."""
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning.fabric", "lightning_fabric"):
        logger = logging.getLogger(name)
        if logger.level != logging.ERROR:  # setLevel clears every logger's cache, once per Trainer
            logger.setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", ".*LeafSpec.*")
    warnings.filterwarnings("ignore", ".*does not have many workers.*")


def _check_epochs(epochs: Any) -> None:
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")


def fit(module: pl.LightningModule, datamodule: pl.LightningDataModule, epochs: int, *,
        seed: int | None = None, callbacks: Sequence[pl.Callback] = (), **trainer_kwargs: Any) -> pd.DataFrame:
    """Train for ``epochs`` (validating each epoch) and return the per-epoch metrics table."""
    _check_epochs(epochs)
    if seed is not None:
        seed_everything(seed)
    history = History()
    trainer = make_trainer(epochs, [history, *callbacks], **trainer_kwargs)
    trainer.fit(module, datamodule=datamodule)
    return history.frame()


@dataclass
class SeedRuns:
    """What :func:`run_seeds` trained: the stacked per-epoch ``history`` and, per seed, the
    trained module and the callbacks that watched it."""

    history: pd.DataFrame
    modules: dict[int, pl.LightningModule] = field(default_factory=dict)
    callbacks: dict[int, list[pl.Callback]] = field(default_factory=dict)

    @property
    def nets(self) -> dict[int, nn.Module]:
        """Per seed, the trained network inside the module (``Classifier.net``)."""
        return {s: getattr(m, "net", m) for s, m in self.modules.items()}


def run_seeds(build: Callable[[], pl.LightningModule], datamodule: pl.LightningDataModule, epochs: int,
              seeds: Iterable[int], *, callbacks: Callable[[], list[pl.Callback]] | None = None,
              ensemble: bool = False, trainer_options: dict[str, Any] | None = None,
              **labels: Any) -> SeedRuns:
    """Train a fresh module per seed; keep the stacked histories, the modules and their callbacks.

    The seed is set *before* ``build()`` so the initial weights depend on it, and it also
    drives the data order (``datamodule.seed``). ``callbacks()`` makes each seed's own
    callbacks; ``trainer_options`` go to every Trainer (``gradient_clip_val``,
    ``reload_dataloaders_every_n_epochs``, ...); ``labels`` become constant columns
    (e.g. ``init="he_normal"``) for plotting with seaborn.

    ``ensemble=True`` trains all seeds at once as one stacked model (:mod:`accel.ensemble`),
    each member with its seed's initial weights and data order, so each seed's rows match a
    separate run up to float rounding. ``build()`` must return an
    :class:`accel.module.Classifier` with an elementwise optimizer; per-seed callbacks
    cannot watch one member of a shared Trainer and are refused. The trained weights are
    copied back into each seed's module, so ``modules`` and ``nets`` work as without it.
    """
    _check_epochs(epochs)
    seeds = list(seeds)
    options = dict(trainer_options or {})
    if ensemble:
        return _run_stacked(build, datamodule, epochs, seeds, callbacks, options, labels)
    frames, modules, kept = [], {}, {}
    for seed in seeds:
        seed_everything(seed)
        if hasattr(datamodule, "seed"):
            datamodule.seed = seed
        module = build()
        extra = callbacks() if callbacks else []
        history = fit(module, datamodule, epochs, callbacks=extra, **options)
        frames.append(history.assign(seed=seed, **labels))
        modules[seed], kept[seed] = module, extra
    return SeedRuns(pd.concat(frames, ignore_index=True), modules, kept)


def _run_stacked(build: Callable[[], pl.LightningModule], datamodule: pl.LightningDataModule, epochs: int,
                 seeds: list[int], callbacks: Callable[[], list[pl.Callback]] | None,
                 options: dict[str, Any], labels: dict[str, Any]) -> SeedRuns:
    if callbacks is not None:
        raise ValueError("per-seed callbacks are not supported with ensemble=True: one Trainer trains "
                         "all seeds as one stacked model, so a callback would see every member at once. "
                         "Pass callbacks=None, or train the seeds one at a time (ensemble=False)")
    check_clipping(options.get("gradient_clip_val"), options.get("gradient_clip_algorithm"))
    if not seeds:
        raise ValueError("ensemble=True needs at least one seed")
    modules = []
    for seed in seeds:  # as the sequential path seeds: the RNG, then the data order, then build()
        seed_everything(seed)
        if hasattr(datamodule, "seed"):
            datamodule.seed = seed
        modules.append(build())
    stacked = stack_classifiers(modules)
    history = MemberHistory(seeds)
    trainer = make_trainer(epochs, [history], **options)
    trainer.fit(stacked, datamodule=MemberData(datamodule, seeds))
    for k, module in enumerate(modules):
        stacked.net.copy_member_into(k, module.net)
    frame = history.frame().assign(**labels)
    return SeedRuns(frame, dict(zip(seeds, modules)), {seed: [] for seed in seeds})


def train_seeds(build: Callable[[], pl.LightningModule], datamodule: pl.LightningDataModule, epochs: int,
                seeds: Iterable[int], *, callbacks: Callable[[], list[pl.Callback]] | None = None,
                ensemble: bool = False, trainer_options: dict[str, Any] | None = None,
                **labels: Any) -> pd.DataFrame:
    """:func:`run_seeds`' stacked per-epoch histories: one row per seed × epoch (epoch, step,
    train_loss, train_acc, val_loss, val_acc, seed, labels...)."""
    return run_seeds(build, datamodule, epochs, seeds, callbacks=callbacks, ensemble=ensemble,
                     trainer_options=trainer_options, **labels).history


def at_epoch(history: pd.DataFrame, epoch: int, metric: str, by: str | list[str]) -> pd.DataFrame:
    """One value of ``metric`` per seed at ``epoch``, grouped by ``by``."""
    rows = history[history["epoch"] == epoch]
    if rows.empty:
        raise ValueError(f"no rows at epoch {epoch}; epochs run: {sorted(history['epoch'].unique())}")
    keys = [by] if isinstance(by, str) else list(by)
    return rows[keys + ["seed", metric]]
