"""Weight initializations, by name.

Variances, for a layer with fan_in inputs and fan_out outputs:
- ``default``: PyTorch's own, U(±1/√fan_in) (kaiming_uniform with a=√5): var = 1/(3·fan_in).
- ``xavier_*``: var = 2/(fan_in + fan_out) (Glorot & Bengio 2010).
- ``he_*``: var = 2/fan_in, for ReLU (He et al. 2015).
- ``normal``: N(0, std²); ``zeros``/``constant``: every weight equal (breaks nothing but symmetry).
Biases are set to zero except under ``default`` and ``constant``.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d)


def _xavier_uniform(w: torch.Tensor, std: float) -> None:
    nn.init.xavier_uniform_(w)


def _xavier_normal(w: torch.Tensor, std: float) -> None:
    nn.init.xavier_normal_(w)


def _he_uniform(w: torch.Tensor, std: float) -> None:
    nn.init.kaiming_uniform_(w, nonlinearity="relu")


def _he_normal(w: torch.Tensor, std: float) -> None:
    nn.init.kaiming_normal_(w, nonlinearity="relu")


def _normal(w: torch.Tensor, std: float) -> None:
    nn.init.normal_(w, 0.0, std)


def _zeros(w: torch.Tensor, std: float) -> None:
    nn.init.zeros_(w)


def _constant(w: torch.Tensor, std: float) -> None:
    nn.init.constant_(w, std)


INITS: dict[str, Callable[[torch.Tensor, float], None]] = {
    "default": lambda w, std: None,
    "zeros": _zeros,
    "constant": _constant,
    "normal": _normal,
    "xavier_uniform": _xavier_uniform,
    "xavier_normal": _xavier_normal,
    "he_uniform": _he_uniform,
    "he_normal": _he_normal,
}


def init_weights(model: nn.Module, name: str = "default", std: float = 0.01) -> nn.Module:
    """Re-initialize every Linear/Conv weight of ``model`` with scheme ``name``.

    ``std`` is the standard deviation for ``normal`` and the value for ``constant``.
    Draws come from torch's global generator: seed first for reproducible weights.
    """
    if name not in INITS:
        raise ValueError(f"unknown init {name!r}; valid: {', '.join(INITS)}")
    if name == "default":
        return model
    fn = INITS[name]
    for m in model.modules():
        if isinstance(m, _WEIGHTED):
            fn(m.weight.data, std)
            if m.bias is not None:
                if name == "constant":
                    nn.init.constant_(m.bias.data, std)
                else:
                    nn.init.zeros_(m.bias.data)
    return model


def expected_variance(name: str, fan_in: int, fan_out: int, std: float = 0.01) -> float:
    """The weight variance each scheme is designed to give (the formulas in the docstring)."""
    table = {
        "default": 1.0 / (3 * fan_in),
        "xavier_uniform": 2.0 / (fan_in + fan_out),
        "xavier_normal": 2.0 / (fan_in + fan_out),
        "he_uniform": 2.0 / fan_in,
        "he_normal": 2.0 / fan_in,
        "normal": std**2,
        "zeros": 0.0,
        "constant": 0.0,
    }
    if name not in table:
        raise ValueError(f"unknown init {name!r}; valid: {', '.join(INITS)}")
    return table[name]


