"""Optimizers by name: `torch.optim` where it has them, `pytorch_optimizer` otherwise.

Nothing here re-implements an update rule. The factory adds two things: names for the
common variants (``momentum`` = SGD with momentum 0.9, ``nesterov``), and parameter
groups that keep biases and normalization weights (every parameter with ndim <= 1)
out of weight decay, as is standard since Goyal et al. 2017 / You et al. 2017.
"""
from __future__ import annotations

import inspect
import math
import numbers
from typing import Any, Iterable

import torch
from torch import nn

def _pytorch_optimizer(name: str) -> type:
    import pytorch_optimizer
    return getattr(pytorch_optimizer, name)


# name -> (optimizer class, or a function returning it lazily; preset arguments)
OPTIMIZERS: dict[str, tuple[Any, dict[str, Any]]] = {
    "sgd": (torch.optim.SGD, {}),
    "momentum": (torch.optim.SGD, {"momentum": 0.9}),
    "nesterov": (torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
    "adagrad": (torch.optim.Adagrad, {}),
    "rmsprop": (torch.optim.RMSprop, {}),
    "adadelta": (torch.optim.Adadelta, {}),
    "adam": (torch.optim.Adam, {}),
    "adamw": (torch.optim.AdamW, {}),
    "radam": (torch.optim.RAdam, {}),
    "nadam": (torch.optim.NAdam, {}),
    "lars": (lambda: _pytorch_optimizer("LARS"), {}),
    "lamb": (lambda: _pytorch_optimizer("Lamb"), {}),
    # Beyond first-order adaptivity: approximations of Newton's method.
    "adahessian": (lambda: _pytorch_optimizer("AdaHessian"), {}),  # Yao et al. 2021
    "shampoo": (lambda: _pytorch_optimizer("Shampoo"), {}),        # Gupta et al. 2018
    "soap": (lambda: _pytorch_optimizer("SOAP"), {}),              # Vyas et al. 2024
    "muon": (lambda: _pytorch_optimizer("Muon"), {}),              # Jordan et al. 2024
}

# AdaHessian estimates diag(H) by Hutchinson's method from Hessian-vector products, so
# the loss must be differentiated with ``create_graph=True``.
NEEDS_CREATE_GRAPH = frozenset({"adahessian"})


def optimizer_class(name: str) -> type:
    check_optimizer(name)
    cls = OPTIMIZERS[name][0]
    return cls if isinstance(cls, type) else cls()


# Options a pytorch_optimizer class reads from its param groups (through **kwargs)
# rather than naming in its signature. Lamb's ``adam_debias=True`` divides the step by
# (1 - beta1^t) inside the Adam ratio only, which is the update of You et al. 2020, Alg. 2.
GROUP_OPTIONS: dict[str, tuple[str, ...]] = {"lamb": ("adam_debias",)}


def valid_arguments(name: str) -> list[str]:
    """The keyword arguments optimizer ``name`` accepts (besides ``params``)."""
    sig = inspect.signature(optimizer_class(name))
    named = [p for p in sig.parameters if p not in ("self", "params", "kwargs")]
    return named + list(GROUP_OPTIONS.get(name, ()))


def check_optimizer(name: str) -> str:
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; valid: {', '.join(OPTIMIZERS)}")
    return name


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two groups: weights with ``weight_decay``; biases and norm parameters (ndim <= 1) without."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def muon_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Muon orthogonalizes updates of hidden weight matrices only (Jordan et al. 2024).

    The output layer's weight, biases and norm gains go to Muon's AdamW groups
    (``use_muon=False``), as its authors recommend. A model with a single weight matrix
    (a linear model) has no hidden layer; Muon then orthogonalizes that matrix, since
    otherwise it would merely be AdamW.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    matrices = [p for p in params if p.ndim >= 2]
    head = matrices[-1:] if len(matrices) > 1 else []  # the classifier head: the last matrix
    hidden = [p for p in matrices if not any(p is h for h in head)]
    rest = [p for p in params if not any(p is h for h in hidden)]
    groups = [{"params": hidden, "weight_decay": weight_decay, "use_muon": True}]
    if rest:
        groups.append({"params": rest, "weight_decay": 0.0, "use_muon": False})
    return groups


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def check_hyperparameters(spec: dict[str, Any]) -> None:
    """Reject values no optimizer can use, naming the valid range.

    ``lr``/``eps`` > 0; ``weight_decay`` >= 0; ``momentum``, ``alpha``, ``rho`` and each of
    ``betas`` in [0, 1) (an average with weight 1 on the past never moves).
    """
    for key in ("lr", "eps"):
        if key in spec and spec[key] is not None and (not _is_number(spec[key]) or spec[key] <= 0):
            raise ValueError(f"{key} must be a positive number, got {spec[key]!r}")
    if "weight_decay" in spec and (not _is_number(spec["weight_decay"]) or spec["weight_decay"] < 0):
        raise ValueError(f"weight_decay must be a number >= 0, got {spec['weight_decay']!r}")
    for key in ("momentum", "alpha", "rho"):
        if key in spec and (not _is_number(spec[key]) or not 0 <= spec[key] < 1):
            raise ValueError(f"{key} must be a number in [0, 1), got {spec[key]!r}")
    if "betas" in spec:
        betas = spec["betas"]
        if (not isinstance(betas, (tuple, list)) or len(betas) < 2
                or not all(_is_number(b) and 0 <= b < 1 for b in betas)):
            raise ValueError(f"betas must be a pair of numbers in [0, 1), got {betas!r}")


def make_optimizer(model: nn.Module | Iterable, spec: dict[str, Any]) -> torch.optim.Optimizer:
    """Build an optimizer from ``{"name": "adamw", "lr": 1e-3, "weight_decay": 0.01, ...}``.

    Weight decay goes to weights only when a module is given (``exclude_from_decay``
    may be set False to decay everything, as plain L2 would). Arguments are checked
    against the optimizer's signature and :func:`check_hyperparameters`.
    """
    spec = dict(spec)
    name = check_optimizer(spec.pop("name", None))
    exclude = spec.pop("exclude_from_decay", True)
    valid = valid_arguments(name)
    unknown = sorted(set(spec) - set(valid))
    if unknown:
        raise ValueError(f"optimizer {name!r} takes no argument {unknown}; valid: {', '.join(valid)}")
    check_hyperparameters(spec)
    wd = float(spec.pop("weight_decay", 0.0))
    if name == "muon":
        if isinstance(model, nn.Module):
            return optimizer_class(name)(muon_groups(model, wd), **spec)
        # Plain tensors: Muon for matrices, its AdamW branch (``adamw_lr``) for the rest.
        params = list(model)
        groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": wd, "use_muon": True},
                  {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0, "use_muon": False}]
        return optimizer_class(name)([g for g in groups if g["params"]], **spec)
    if isinstance(model, nn.Module):
        params = param_groups(model, wd) if exclude else [{"params": list(model.parameters()),
                                                           "weight_decay": wd}]
    else:
        params = [{"params": list(model), "weight_decay": wd}]
    return optimizer_class(name)(params, **{**OPTIMIZERS[name][1], **spec})
