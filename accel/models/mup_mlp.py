"""An MLP of a given width in the standard parametrization (SP) or in µP, for Adam.

The Maximal Update Parametrization (Yang et al. 2022, "Tensor Programs V", Table 3) sets,
for Adam, each layer's initial variance and learning rate as a function of its fan-in:

================  ======================  ==================
layer             initial variance        Adam learning rate
================  ======================  ==================
input weights     1 / fan_in              η
all biases        (here 0)                η
hidden weights    1 / fan_in              η / fan_in
output weights    1 / fan_in²             η / fan_in
================  ======================  ==================

SP is the first column for every layer (1 / fan_in) and one rate η for all. Written
relative to a base width w₀ (as the ``mup`` package's ``set_base_shapes`` does), with
m = width / w₀, µP is SP at w₀; at width w the hidden and output rates are η / m and the
output variance 1 / (fan_in · m). :func:`mup_rules` gives these numbers.

Adam's step is invariant to the scale of the gradient (up to ε), so a layer trained at
rate c·η is the same as the layer's weight written ``W = c·V`` and ``V`` trained at η with
``V`` initialized at ``W₀ / c`` (the "multiplier" form of µP, Yang et al. 2022, App. J).
:class:`WidthMLP` uses that form: every layer is trained at one rate η, which lets seeds
and learning rates be stacked (:mod:`accel.experiments.recent_stacked`) and keeps the
learning-rate ladder the same object under SP and µP. Weight decay would break the
equivalence (decoupled decay does not scale with the multiplier): train it without.
A unit test checks the equivalence against explicit per-layer rates.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

PARAMETRIZATIONS = ("sp", "mup")


def mup_rules(width: int, base_width: int, parametrization: str, n_in: int) -> dict[str, dict[str, float]]:
    """Per layer kind (``input``, ``hidden``, ``output``), the initial weight variance and the
    Adam rate multiplier (× η) of Table 3 (µP) or of SP, for hidden width ``width``."""
    _check(width, base_width, parametrization)
    m = width / base_width if parametrization == "mup" else 1.0
    return {"input": {"var": 1.0 / n_in, "lr": 1.0},
            "hidden": {"var": 1.0 / width, "lr": 1.0 / m},
            "output": {"var": 1.0 / (width * m), "lr": 1.0 / m}}


def _check(width: int, base_width: int, parametrization: str) -> None:
    if parametrization not in PARAMETRIZATIONS:
        raise ValueError(f"unknown parametrization {parametrization!r}; valid: {', '.join(PARAMETRIZATIONS)}")
    for name, v in (("width", width), ("base_width", base_width)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")


class WidthMLP(nn.Module):
    """``n_in`` → ``width`` → … (``depth`` hidden layers of ``width``) → ``n_out``, ReLU, in SP or µP.

    Weights are stored as ``V`` with ``W = multiplier · V`` (multipliers: Adam rate multipliers
    of :func:`mup_rules`, applied in the forward pass); biases start at 0. At
    ``width == base_width`` µP and SP are the same network.
    """

    def __init__(self, n_in: int, width: int, n_out: int, *, parametrization: str = "sp",
                 base_width: int | None = None, depth: int = 2):
        super().__init__()
        base_width = width if base_width is None else base_width
        _check(width, base_width, parametrization)
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be an int >= 1 (hidden layers), got {depth!r}")
        rules = mup_rules(width, base_width, parametrization, n_in)
        dims = [n_in] + [width] * depth + [n_out]
        kinds = ["input"] + ["hidden"] * (depth - 1) + ["output"]
        self.parametrization, self.width, self.base_width = parametrization, width, base_width
        self.kinds = kinds
        self.multipliers = [rules[k]["lr"] for k in kinds]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for (fan_in, fan_out), kind, c in zip(zip(dims[:-1], dims[1:]), kinds, self.multipliers):
            std = math.sqrt(rules[kind]["var"])
            self.weights.append(nn.Parameter(torch.randn(fan_out, fan_in) * (std / c)))
            self.biases.append(nn.Parameter(torch.zeros(fan_out)))

    def effective_weights(self) -> list[torch.Tensor]:
        """``W = multiplier · V`` per layer (what the network computes with)."""
        return [c * v for c, v in zip(self.multipliers, self.weights)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        h = x.flatten(1)
        last = len(self.multipliers) - 1
        for i, (c, v, b) in enumerate(zip(self.multipliers, self.weights, self.biases)):
            h = F.linear(h, c * v, b)
            if i < last:
                h = torch.relu(h)
        return h
