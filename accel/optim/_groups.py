"""Parameter groups: which tensors get weight decay, and which Muon orthogonalizes.

Decisions are made on each tensor's shape as one member of a model sees it
(``member_ndim``): a seed ensemble stacks K copies along a new first dimension, and its
stacked biases (ndim 2) must still be treated as biases.
"""
from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn


def _params(model: nn.Module | Iterable[torch.Tensor]) -> list[torch.Tensor]:
    params = model.parameters() if isinstance(model, nn.Module) else model
    return [p for p in params if p.requires_grad]


def member_ndim(model: nn.Module | Iterable[torch.Tensor], p: torch.Tensor) -> int:
    """``p.ndim`` as one model sees it: one less for a stacked ensemble's parameters."""
    return p.ndim - int(getattr(model, "stacked_dims", 0))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two groups: weights with ``weight_decay``; biases and norm parameters (ndim <= 1) without.

    Standard since Goyal et al. 2017 and You et al. 2017: decaying a bias or a norm's gain
    only shrinks a scale that the next layer or normalization undoes. Without weight decay
    the split changes nothing and one group is returned: every step of a ``torch.optim``
    optimizer then makes one pass over its parameters instead of two (per-step Python cost
    that a small model's step on a CPU feels), with the same update of every tensor.
    """
    if weight_decay == 0:
        return [{"params": _params(model), "weight_decay": 0.0}]
    decay, no_decay = [], []
    for p in _params(model):
        (no_decay if member_ndim(model, p) <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def muon_groups(model: nn.Module | Iterable[torch.Tensor], weight_decay: float) -> list[dict[str, Any]]:
    """Muon orthogonalizes updates of hidden weight matrices only (Jordan et al. 2024).

    The output layer's weight, biases and norm gains go to Muon's AdamW groups
    (``use_muon=False``), as its authors recommend. A model with a single weight matrix
    (a linear model, or plain tensors) has no hidden layer; Muon then orthogonalizes
    that matrix, since otherwise it would merely be AdamW.
    """
    params = _params(model)
    matrices = [p for p in params if member_ndim(model, p) >= 2]
    is_module = isinstance(model, nn.Module)
    head = matrices[-1:] if is_module and len(matrices) > 1 else []  # the classifier head
    hidden = [p for p in matrices if not any(p is h for h in head)]
    rest = [p for p in params if not any(p is h for h in hidden)]
    groups = [{"params": hidden, "weight_decay": weight_decay, "use_muon": True}]
    if rest:
        groups.append({"params": rest, "weight_decay": 0.0, "use_muon": False})
    return [g for g in groups if g["params"]]
