"""Per-layer learning rates: parameter groups whose rate is the base rate times a per-layer factor.

LeCun et al. (1998, "Efficient BackProp", §4.7) advise giving each weight its own rate,
because the curvature the step must respect differs across layers: in a deep sigmoid
network the second derivatives of the lower layers are usually smaller, so those layers
tolerate, and need, larger rates. Fine-tuning practice runs the other way round: a
pre-trained body gets a smaller rate than the freshly initialized head (Howard & Ruder
2018's "discriminative fine-tuning"; Kumar et al. 2022 on how a large body rate distorts
pre-trained features).

Both are a *rule*: a mapping from module paths to factors, kept as data so that it
travels in a module's hyper-parameters and a checkpoint (``{"features": 0.1}``,
``{"1": 4.0, "4": 2.0}``). A key matches a parameter's module path component-wise
("features" matches ``features.0.weight`` but not ``features2.weight``); the longest
matching key wins; ``"*"`` sets the factor of parameters no other key matches (1 if
absent). A factor of 0 leaves a layer where it is (its group's rate is 0); freezing it
with ``requires_grad_(False)`` also saves its gradient.

The groups are built by splitting the factory's weight-decay groups
(:mod:`accel.optim._groups`), so what decays and what does not is unchanged, and a
schedule (``LambdaLR``) multiplies every group's rate by the same factor.
"""
from __future__ import annotations

import inspect
import math
import numbers
from typing import Any, Mapping

import torch
from torch import nn

DEFAULT_KEY = "*"
_STACKED_PREFIX = "stacked_params."  # accel.ensemble.StackedEnsemble's parameter names


def member_name(model: nn.Module, name: str) -> str:
    """A parameter's name as one member network calls it.

    A stacked seed ensemble (:class:`accel.ensemble.StackedEnsemble`) stores member
    parameter ``1.weight`` as ``stacked_params.1__weight``; rules are written for one
    network, so they match the member's name.
    """
    if getattr(model, "stacked_dims", 0) and name.startswith(_STACKED_PREFIX):
        return name[len(_STACKED_PREFIX):].replace("__", ".")
    return name


def layer_of(name: str) -> str:
    """The module path of parameter ``name`` (``features.0.weight`` → ``features.0``)."""
    return name.rsplit(".", 1)[0] if "." in name else ""


def layer_names(model: nn.Module) -> list[str]:
    """The module paths that own trainable parameters, in the order the model lists them."""
    seen: list[str] = []
    for name, p in model.named_parameters():
        layer = layer_of(member_name(model, name))
        if p.requires_grad and layer not in seen:
            seen.append(layer)
    return seen


def _matches(key: str, layer: str) -> bool:
    if key == DEFAULT_KEY:
        return False
    parts, key_parts = layer.split(".") if layer else [], key.split(".")
    return parts[:len(key_parts)] == key_parts


def check_rule(rule: Any) -> dict[str, float]:
    """``rule`` as a dict of str → factor >= 0, else a ValueError saying what a rule is."""
    if not isinstance(rule, Mapping) or not rule:
        raise ValueError(f"layer_lr must be a non-empty dict of module path -> factor (e.g. "
                         f"{{'features': 0.1, '*': 1.0}}), got {rule!r}")
    out = {}
    for key, factor in rule.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"layer_lr keys are module paths (non-empty str) or '*', got {key!r}")
        if isinstance(factor, bool) or not isinstance(factor, numbers.Real) or not math.isfinite(factor) \
                or factor < 0:
            raise ValueError(f"layer_lr[{key!r}] must be a finite number >= 0, got {factor!r}")
        out[key] = float(factor)
    return out


def factor_for(layer: str, rule: Mapping[str, float]) -> float:
    """The factor ``rule`` gives the parameters of module ``layer`` (longest matching key)."""
    keys = [k for k in rule if _matches(k, layer)]
    if keys:
        return float(rule[max(keys, key=lambda k: len(k.split(".")))])
    return float(rule.get(DEFAULT_KEY, 1.0))


def layer_factors(model: nn.Module, rule: Mapping[str, float]) -> dict[str, float]:
    """Every parameter-owning layer of ``model`` with its factor; a key matching no layer is an error."""
    rule = check_rule(rule)
    layers = layer_names(model)
    unused = [k for k in rule if k != DEFAULT_KEY and not any(_matches(k, layer) for layer in layers)]
    if unused:
        raise ValueError(f"layer_lr keys {unused} match no layer of the model; its layers are: "
                         f"{', '.join(layers)} (or '*' for the rest)")
    return {layer: factor_for(layer, rule) for layer in layers}


def default_lr(cls: type) -> float:
    """The optimizer class's own default ``lr`` (used when a spec gives none)."""
    param = inspect.signature(cls).parameters.get("lr")
    if param is None or not isinstance(param.default, numbers.Real):
        raise ValueError(f"{cls.__name__} has no default lr; give 'lr' with 'layer_lr'")
    return float(param.default)


def layer_lr_groups(model: nn.Module, groups: list[dict[str, Any]], rule: Mapping[str, float],
                    lr: float) -> list[dict[str, Any]]:
    """Split each of ``groups`` by layer factor; each part gets ``lr × factor`` and keeps its other options.

    Parts keep the order of ``groups`` and, within one, of the factors' first appearance,
    so the same model and rule always give the same groups (and optimizer state indices).
    """
    if not isinstance(model, nn.Module):
        raise ValueError("layer_lr needs the model (an nn.Module) to know each parameter's layer, "
                         "not a list of tensors")
    factors = layer_factors(model, rule)
    by_id = {id(p): factors[layer_of(member_name(model, n))] for n, p in model.named_parameters()
             if p.requires_grad}
    out: list[dict[str, Any]] = []
    for group in groups:
        parts: dict[float, list[torch.Tensor]] = {}
        for p in group["params"]:
            parts.setdefault(by_id[id(p)], []).append(p)
        for factor, params in parts.items():
            out.append({**group, "params": params, "lr": lr * factor, "lr_factor": factor})
    return out
