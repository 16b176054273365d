"""Weight-standardized layers.

- Weight standardization (Qiao et al. 2019): each output unit's weights are centred
  and scaled to unit variance before use, which smooths the landscape like BatchNorm
  without any batch dependence; meant to be followed by GroupNorm.
- Scaled weight standardization (Brock et al. 2021, normalizer-free networks):
  ``Ŵ = γ · g · (W − mean) / (std · √fan_in)`` with a learnable gain ``g`` (init 1) and
  ``γ = 1/√Var(act(z))``, ``z ~ N(0, 1)``, for the activation feeding the layer. A
  centred row with squared norm ``γ²`` maps inputs of variance ``Var(act(z))`` to unit
  variance, so the signal keeps its scale through depth with no activation statistics.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .activation import make_activation


def standardize(w: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Zero mean and unit (biased) variance over each output unit's incoming weights."""
    dims = tuple(range(1, w.ndim))
    mean = w.mean(dim=dims, keepdim=True)
    var = w.var(dim=dims, keepdim=True, unbiased=False)
    return (w - mean) / torch.sqrt(var + eps)


def activation_gain(activation: str | None) -> float:
    """``γ = 1/√Var(act(z))`` for ``z ~ N(0, 1)`` (Brock et al. 2021); 1 for no activation.

    Computed by the trapezoid rule on a fine grid with a node at the kink 0, which is
    exact to ~1e-9 for piecewise-smooth activations (ReLU: √(2/(1 − 1/π)) ≈ 1.7129).
    """
    if activation in (None, "identity"):
        return 1.0
    act = make_activation(activation)
    nodes = np.linspace(-12.0, 12.0, 240_001)
    weights = np.exp(-0.5 * nodes**2)
    weights[[0, -1]] *= 0.5
    weights = weights / weights.sum()
    with torch.no_grad():
        values = act(torch.as_tensor(nodes, dtype=torch.float64)).numpy()
    mean = float(weights @ values)
    return 1.0 / math.sqrt(float(weights @ (values - mean) ** 2))


def scaled_standardize(w: torch.Tensor, gain: torch.Tensor, gamma: float, eps: float = 1e-4) -> torch.Tensor:
    """``γ·g·(W − mean)/√max(fan_in·var, eps)``, NFNets' form (eps guards a constant row)."""
    dims = tuple(range(1, w.ndim))
    fan_in = w[0].numel()
    mean = w.mean(dim=dims, keepdim=True)
    var = w.var(dim=dims, keepdim=True, unbiased=False)
    return (w - mean) * (gain * gamma * torch.rsqrt(torch.clamp(var * fan_in, min=eps)))


class WSLinear(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, standardize(self.weight), self.bias)


class WSConv1d(nn.Conv1d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, standardize(self.weight), self.bias)


class WSConv2d(nn.Conv2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, standardize(self.weight), self.bias)


class _ScaledWS:
    """Mixin: a learnable per-output gain and a fixed activation gain ``gamma``."""

    def _init_scaled(self, gamma: float) -> None:
        self.gamma = float(gamma)
        shape = (self.weight.shape[0],) + (1,) * (self.weight.ndim - 1)
        self.gain = nn.Parameter(torch.ones(shape))

    def scaled_weight(self) -> torch.Tensor:
        return scaled_standardize(self.weight, self.gain, self.gamma)


class ScaledWSLinear(nn.Linear, _ScaledWS):
    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, gamma: float = 1.0):
        super().__init__(in_features, out_features, bias)
        self._init_scaled(gamma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.scaled_weight(), self.bias)


class ScaledWSConv1d(nn.Conv1d, _ScaledWS):
    def __init__(self, *args, gamma: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_scaled(gamma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.scaled_weight(), self.bias)


class ScaledWSConv2d(nn.Conv2d, _ScaledWS):
    def __init__(self, *args, gamma: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_scaled(gamma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.scaled_weight(), self.bias)


def weight_layer(norm: str, kind: str, activation: str | None = None):
    """The Linear/Conv class for ``norm`` (``kind`` is linear, conv1d or conv2d).

    For ``sws`` a factory that fixes ``gamma`` for the ``activation`` feeding the layer.
    """
    plain = {"linear": nn.Linear, "conv1d": nn.Conv1d, "conv2d": nn.Conv2d}
    if kind not in plain:
        raise ValueError(f"unknown layer kind {kind!r}; valid: {', '.join(plain)}")
    if norm in ("ws", "wsgn"):
        return {"linear": WSLinear, "conv1d": WSConv1d, "conv2d": WSConv2d}[kind]
    if norm == "sws":
        cls = {"linear": ScaledWSLinear, "conv1d": ScaledWSConv1d, "conv2d": ScaledWSConv2d}[kind]
        gamma = activation_gain(activation)
        return lambda *a, **kw: cls(*a, gamma=gamma, **kw)
    return plain[kind]
