"""Activations by name."""
from __future__ import annotations

import torch
from torch import nn


class CenteredSigmoid(nn.Module):
    """``σ(x) − 1/2`` (= ``tanh(x/2)/2``): the logistic sigmoid shifted to be zero-centred.

    Same slope as the sigmoid everywhere (σ'(0) = 1/4), outputs in (−1/2, 1/2) instead of
    (0, 1): the one change "Efficient BackProp" (LeCun et al. 1998, §4.4) asks for, so a
    comparison with ``sigmoid`` isolates the offset.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x) - 0.5


ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU,
               "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "identity": nn.Identity,
               "silu": nn.SiLU, "centered_sigmoid": CenteredSigmoid}


def make_activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()
