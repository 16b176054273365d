"""The race's fixed workloads: model, data, loss, validation metric and evaluation schedule as data.

Each workload trains one model (a spec for :func:`accel.models.build_model`) on one offline
data set (:func:`accel.data.make_datamodule`) with a fixed batch size and loss; the metric
is the validation error rate (1 - accuracy on the held-out test split, in eval mode),
measured every ``eval_every`` optimizer steps and not counted in the training time.
``max_steps`` is the length the target-setting runs train for; the race's step budget is
4/3 of it (:mod:`accel.experiments.race.targets`). Each workload has one held-out variant
(``heldout``: keys that replace the model spec's), which a submission must also bring to
its own target or the workload is void (AlgoPerf's randomized workloads, in miniature).
``TOY_WORKLOADS`` holds a two-class, linearly separable problem for tests.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

VARIANTS = ("base", "heldout")


@dataclass(frozen=True)
class Workload:
    name: str
    model: dict[str, Any]
    data: dict[str, Any]  # {"name": <data set>, **make_datamodule arguments except batch_size}
    batch_size: int
    max_steps: int
    eval_every: int
    heldout: dict[str, Any]
    loss: str = "cross_entropy"
    metric: str = "error_rate"
    description: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)

    def model_spec(self, variant: str = "base") -> dict[str, Any]:
        check_variant(variant)
        return {**self.model, **(self.heldout if variant == "heldout" else {})}

    def datamodule(self, seed: int = 0) -> Any:
        """The data module (the data order follows ``seed``; the split itself is fixed)."""
        args = dict(self.data)
        name = args.pop("name")
        if name in SYNTHETIC:
            from ...data import TensorDataModule
            return TensorDataModule(*SYNTHETIC[name](**args.pop("source_args", {})), batch_size=self.batch_size,
                                    seed=seed, **args)
        from ...data import make_datamodule
        return make_datamodule(name, self.batch_size, seed=seed, **args)

    def fingerprint(self) -> str:
        """A hash of the definition: cached trials of a changed workload are not reused."""
        text = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:12]


def check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")
    return variant


def two_blobs(num_samples: int = 256, separation: float = 6.0, seed: int = 0, features: int = 2
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two Gaussian classes ``separation`` standard deviations apart along the first axis; half test."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, num_samples)
    x = rng.normal(size=(num_samples, features)).astype(np.float32)
    x[:, 0] += np.where(y == 1, separation / 2, -separation / 2)
    half = num_samples // 2
    return x[:half], y[:half].astype(np.int64), x[half:], y[half:].astype(np.int64)


SYNTHETIC = {"two_blobs": two_blobs}

WORKLOADS: dict[str, Workload] = {w.name: w for w in (
    Workload("mnist1d_cnn", {"name": "cnn1d", "in_channels": 1, "channels": [32, 32], "num_classes": 10},
             {"name": "mnist1d", "source_args": {"num_samples": 5000}}, batch_size=100, max_steps=1200,
             eval_every=40, heldout={"activation": "gelu"},
             description="MNIST-1D (4,000 train / 1,000 test), 1-D CNN with 2 conv layers of 32 channels, ReLU; "
                         "held out: GELU"),
    Workload("mnist1d_mlp", {"name": "mlp", "in_features": 40, "hidden": [100, 100], "out_features": 10},
             {"name": "mnist1d", "source_args": {"num_samples": 5000}}, batch_size=100, max_steps=600,
             eval_every=20, heldout={"activation": "tanh"},
             description="MNIST-1D, MLP 40-100-100-10, ReLU, 600 setter steps (reduced from 1,200, with "
                         "evaluations every 20 steps instead of 40, to fit the race chapter's cpu budget); "
                         "held out: tanh"),
    Workload("digits_mlp", {"name": "mlp", "in_features": 64, "hidden": [64], "out_features": 10},
             {"name": "digits", "standardize": True}, batch_size=64, max_steps=450, eval_every=15,
             heldout={"hidden": [32, 32]},
             description="scikit-learn digits (1,437 train / 360 test, standardized), MLP 64-64-10; "
                         "held out: 64-32-32-10"),
    Workload("mnist5k_cnn", {"name": "cnn2d", "in_channels": 1, "channels": [16, 32], "num_classes": 10},
             {"name": "mnist5k", "standardize": True}, batch_size=100, max_steps=600, eval_every=20,
             heldout={"norm": "bn"},
             description="real MNIST 5k subset (4,000 / 1,000, standardized), 2-D CNN 16-32 channels; "
                         "held out: with BatchNorm"),
)}

TOY_WORKLOADS: dict[str, Workload] = {w.name: w for w in (
    Workload("toy_blobs", {"name": "mlp", "in_features": 2, "hidden": [], "out_features": 2},
             {"name": "two_blobs", "source_args": {"num_samples": 256}}, batch_size=32, max_steps=40,
             eval_every=5, heldout={"in_features": 2}, tags=("test",),
             description="two separable Gaussian classes, a linear classifier (tests)"),
)}


def get_workload(name: str) -> Workload:
    """A workload by name (the race's or a test's); an unknown name lists the valid ones."""
    found = WORKLOADS.get(name) or TOY_WORKLOADS.get(name)
    if found is None:
        raise ValueError(f"unknown workload {name!r}; valid: {', '.join(WORKLOADS)} "
                         f"(tests: {', '.join(TOY_WORKLOADS)})")
    return found
