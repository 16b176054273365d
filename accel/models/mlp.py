"""A multilayer perceptron with a choice of activation, normalization and init."""
from __future__ import annotations

from typing import Sequence

from torch import nn

from .activation import make_activation
from .init import init_weights
from .norm import check_norm, make_norm
from .ws import weight_layer


class MLP(nn.Sequential):
    """Linear → norm → activation, repeated, then a linear head.

    ``norm`` is one of :data:`accel.models.norm.NORMS`; ``groups`` is GroupNorm's group
    count, ``ghost_size`` BatchNorm's ghost-batch size (None: the whole batch).

    ``hidden`` lists the hidden widths, e.g. ``(1024, 64)`` for 784-1024-64-10.
    Inputs of any shape are flattened first. ``dropout`` > 0 adds an ``nn.Dropout`` after
    every hidden activation (Srivastava et al. 2014: each hidden unit zeroed with that
    probability in training, the rest scaled by 1/(1 − p)); at 0 no layer is added.
    """

    def __init__(self, in_features: int, hidden: Sequence[int], out_features: int, *,
                 activation: str = "relu", norm: str = "none", init: str = "default",
                 init_std: float = 0.01, groups: int = 8, ghost_size: int | None = None,
                 dropout: float = 0.0):
        check_norm(norm)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for i, h in enumerate(hidden):
            linear = weight_layer(norm, "linear", activation if i else None)
            layers += [linear(width, h), make_norm(norm, h, 0, groups, ghost_size), make_activation(activation)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, out_features))
        super().__init__(*layers)
        init_weights(self, init, init_std)

    def hidden_layers(self) -> list[nn.Linear]:
        return [m for m in self if isinstance(m, nn.Linear)][:-1]
