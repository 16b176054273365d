"""Weight-standardized layers (Qiao et al. 2019): each output unit's weights are
centred and scaled to unit variance before use, which smooths the landscape like
BatchNorm without any batch dependence."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def standardize(w: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    dims = tuple(range(1, w.ndim))
    mean = w.mean(dim=dims, keepdim=True)
    var = w.var(dim=dims, keepdim=True, unbiased=False)
    return (w - mean) / torch.sqrt(var + eps)


class WSLinear(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, standardize(self.weight), self.bias)


class WSConv1d(nn.Conv1d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, standardize(self.weight), self.bias)


class WSConv2d(nn.Conv2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, standardize(self.weight), self.bias)
