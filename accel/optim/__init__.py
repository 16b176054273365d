"""Optimizers by name: `torch.optim` where it has them, `pytorch_optimizer` otherwise.

Nothing here re-implements an update rule. The factory adds names for common variants
(``momentum`` = SGD with momentum 0.9, ``nesterov``), checks every argument against the
optimizer's signature, and builds parameter groups that keep biases and normalization
weights (ndim <= 1) out of weight decay. The facts about each optimizer live in one
table, :data:`accel.optim.info.OPTIMIZERS`. ``layer_lr`` in a spec gives layers their own
rates (:mod:`accel.optim.layerwise`).
"""
from __future__ import annotations

import inspect
import math
import numbers
from typing import Any, Iterable

import torch
from torch import nn

from ._groups import member_ndim, muon_groups, param_groups
from .info import OPTIMIZERS, OptimizerInfo, check_optimizer, needs_create_graph
from .layerwise import default_lr, layer_lr_groups

__all__ = ["OPTIMIZERS", "OptimizerInfo", "check_hyperparameters", "check_optimizer", "make_optimizer",
           "layer_lr_groups", "muon_groups", "needs_create_graph", "optimizer_class", "param_groups",
           "valid_arguments"]


def optimizer_class(name: str) -> type:
    return check_optimizer(name).resolve()


def valid_arguments(name: str) -> list[str]:
    """The keyword arguments optimizer ``name`` accepts (besides ``params``)."""
    info = check_optimizer(name)
    sig = inspect.signature(info.resolve())
    named = [p for p in sig.parameters if p not in ("self", "params", "kwargs", "model")]
    return named + list(info.group_options)


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def check_hyperparameters(spec: dict[str, Any]) -> None:
    """Reject values no optimizer can use, naming the valid range.

    ``lr``/``eps`` > 0; ``weight_decay`` >= 0; ``momentum``, ``alpha``, ``rho`` and each of
    ``betas`` in [0, 1) (an average with weight 1 on the past never moves).
    """
    for key in ("lr", "eps"):
        if key in spec and (not _is_number(spec[key]) or spec[key] <= 0):
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


def make_optimizer(model: nn.Module | Iterable[torch.Tensor], spec: dict[str, Any]) -> torch.optim.Optimizer:
    """Build an optimizer from ``{"name": "adamw", "lr": 1e-3, "weight_decay": 0.01, ...}``.

    Weight decay goes to weights only when a module is given (``exclude_from_decay``
    may be set False to decay everything, as plain L2 would). ``exclude_from_adaptation=True``
    (a layer-wise rule with an ``adaptation_off`` option in :mod:`accel.optim.info`: LAMB)
    gives biases and norm parameters (ndim <= 1) a trust ratio of 1, as You et al. 2020 do
    for BERT. Arguments are checked
    against the optimizer's signature and :func:`check_hyperparameters`. ``layer_lr``
    (``{"features": 0.1, "*": 1.0}``) multiplies ``lr`` per layer
    (:func:`accel.optim.layerwise.layer_lr_groups`); absent, every group has ``lr``.
    """
    spec = dict(spec)
    name = spec.pop("name", None)
    info = check_optimizer(name)
    exclude = spec.pop("exclude_from_decay", True)
    no_adaptation = spec.pop("exclude_from_adaptation", False)
    if no_adaptation and info.adaptation_off is None:
        layerwise = [n for n, i in OPTIMIZERS.items() if i.adaptation_off]
        raise ValueError(f"exclude_from_adaptation applies to layer-wise rules with a per-group switch "
                         f"({', '.join(layerwise)}), not {name!r}")
    layer_lr = spec.pop("layer_lr", None)
    valid = valid_arguments(name)
    unknown = sorted(set(spec) - set(valid))
    if unknown:
        raise ValueError(f"optimizer {name!r} takes no argument {unknown}; valid: {', '.join(valid)}")
    check_hyperparameters(spec)
    if info.takes_model:
        return _from_model(name, info, model, spec, layer_lr, exclude)
    wd = float(spec.pop("weight_decay", 0.0))
    if not isinstance(model, nn.Module):
        model = list(model)
    if name == "muon":
        groups = muon_groups(model, wd)
    elif isinstance(model, nn.Module) and exclude:
        groups = param_groups(model, wd)
    else:
        params = model.parameters() if isinstance(model, nn.Module) else model
        groups = [{"params": list(params), "weight_decay": wd}]
    if layer_lr is not None:
        lr = spec.get("lr", info.presets.get("lr"))
        groups = layer_lr_groups(model, groups, layer_lr, default_lr(info.resolve()) if lr is None else lr)
    if no_adaptation:
        groups = _without_adaptation(model, groups, info.adaptation_off)
    return info.resolve()(groups, **{**info.presets, **spec})


def _from_model(name: str, info: OptimizerInfo, model: Any, spec: dict[str, Any], layer_lr: Any,
                exclude: bool) -> torch.optim.Optimizer:
    """Build a class that groups a model's parameters itself (``takes_model``: Adam-mini). A list
    of tensors is wrapped in a module whose parameter names (``params.0``, ...) match none of
    the class's special blocks, so each tensor is one block."""
    if not isinstance(model, nn.Module):
        tensors = list(model)
        model = nn.Module()
        model.params = nn.ParameterList([t if isinstance(t, nn.Parameter) else nn.Parameter(t) for t in tensors])
    if layer_lr is not None or not exclude:
        raise ValueError(f"optimizer {name!r} builds its own parameter groups: layer_lr and "
                         f"exclude_from_decay do not apply")
    return info.resolve()(model, **{**info.presets, **spec})


def _without_adaptation(model: Any, groups: list[dict[str, Any]], option: str) -> list[dict[str, Any]]:
    """Split every group into its tensors of ndim >= 2 and the rest, the rest with ``option=True``."""
    out = []
    for group in groups:
        matrices = [p for p in group["params"] if member_ndim(model, p) >= 2]
        vectors = [p for p in group["params"] if member_ndim(model, p) <= 1]
        if matrices:
            out.append({**group, "params": matrices})
        if vectors:
            out.append({**group, "params": vectors, option: True})
    return out
