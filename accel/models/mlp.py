"""A multilayer perceptron with a choice of activation, normalization and init."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .activation import make_activation
from .init import init_weights
from .norm import check_norm, make_norm
from .ws import WSLinear


class MLP(nn.Sequential):
    """Linear → norm → activation, repeated, then a linear head.

    ``hidden`` lists the hidden widths, e.g. ``(1024, 64)`` for 784-1024-64-10.
    Inputs of any shape are flattened first.
    """

    def __init__(self, in_features: int, hidden: Sequence[int], out_features: int, *,
                 activation: str = "relu", norm: str = "none", init: str = "default",
                 init_std: float = 0.01, groups: int = 8):
        check_norm(norm)
        linear = WSLinear if norm == "ws" else nn.Linear
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers += [linear(width, h), make_norm(norm, h, 0, groups), make_activation(activation)]
            width = h
        layers.append(nn.Linear(width, out_features))
        super().__init__(*layers)
        init_weights(self, init, init_std)

    def hidden_layers(self) -> list[nn.Linear]:
        return [m for m in self if isinstance(m, nn.Linear)][:-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102 - nn.Sequential's
        return super().forward(x)
