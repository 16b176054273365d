"""accel: the shared package behind *Accelerating Network Training*.

Three layers, imports pointing one way:

* the training library (this package's top level): ``data``, ``models``, ``optim``,
  ``schedules``, ``module``, ``callbacks``, ``training``, ``ensemble``, ``hessian``, ...;
* :mod:`accel.experiments`: the chapters' experiment helpers (may use the library);
* :mod:`accel.repro`: claims, results records, the runner, sweeps, the report and the
  book build (uses neither layer above, and imports no torch).

The names a chapter's setup cell needs are re-exported here, lazily (PEP 562), so that
``import accel.repro`` stays free of torch and ``from accel import Classifier, fit``
still works.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    # training library
    "Classifier": "accel.module",
    "fit": "accel.training",
    "train_seeds": "accel.training",
    "run_seeds": "accel.training",
    "make_trainer": "accel.training",
    "seed_everything": "accel.seeding",
    "make_datamodule": "accel.data",
    "TensorDataModule": "accel.data",
    "build_model": "accel.models",
    "MLP": "accel.models",
    "CNN1d": "accel.models",
    "CNN2d": "accel.models",
    "make_optimizer": "accel.optim",
    "make_schedule": "accel.schedules",
    "lr_curve": "accel.schedules",
    "History": "accel.callbacks",
    "StepHistory": "accel.callbacks",
    # reproducibility layer
    "Results": "accel.repro.results",
    "claims": "accel.repro.claims",
    "profiles": "accel.repro.profiles",
    "select": "accel.repro.tables",
    "values": "accel.repro.tables",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'accel' has no attribute {name!r}")
    module = importlib.import_module(_EXPORTS[name])
    value = module if module.__name__.endswith("." + name) else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
