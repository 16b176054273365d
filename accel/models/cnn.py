"""Small convolutional networks: 1-D for MNIST-1D (Greydanus 2020's CNN shape), 2-D for images."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .activation import make_activation
from .init import init_weights
from .norm import check_norm, make_norm
from .ws import weight_layer


def as_signal(x: torch.Tensor) -> torch.Tensor:
    """(N, L) or (N, C, L) as (N, C, L): the layout a Conv1d stack expects."""
    return x.unsqueeze(1) if x.ndim == 2 else x


def as_image(x: torch.Tensor) -> torch.Tensor:
    """(N, H·W), (N, H, W) or (N, C, H, W) as (N, C, H, W); flat inputs must be square images."""
    if x.ndim == 2:
        side = int(round(x.shape[1] ** 0.5))
        if side * side != x.shape[1]:
            raise ValueError(f"cannot view {x.shape[1]} features as a square image")
        x = x.view(len(x), side, side)
    return x.unsqueeze(1) if x.ndim == 3 else x


class _ConvNet(nn.Module):
    """Conv → norm → activation blocks, global average pooling, a linear head.

    ``norm`` is one of :data:`accel.models.norm.NORMS`; ``groups`` is GroupNorm's group
    count, ``ghost_size`` BatchNorm's ghost-batch size (None: the whole batch).
    """
    dim = 1

    def __init__(self, in_channels: int, channels: Sequence[int], num_classes: int, *,
                 activation: str = "relu", norm: str = "none", init: str = "default",
                 init_std: float = 0.01, groups: int = 8, kernel_size: int = 5, stride: int = 2,
                 ghost_size: int | None = None):
        super().__init__()
        check_norm(norm)
        blocks: list[nn.Module] = []
        width = in_channels
        for i, c in enumerate(channels):
            conv = weight_layer(norm, f"conv{self.dim}d", activation if i else None)
            blocks += [conv(width, c, kernel_size, stride=stride, padding=kernel_size // 2),
                       make_norm(norm, c, self.dim, groups, ghost_size), make_activation(activation)]
            width = c
        self.features = nn.Sequential(*blocks)
        pool = nn.AdaptiveAvgPool1d(1) if self.dim == 1 else nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(pool, nn.Flatten(), nn.Linear(width, num_classes))
        init_weights(self, init, init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self._shape(x)))

    def _shape(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class CNN1d(_ConvNet):
    """Conv1d stack over a length-L signal; input (N, L) or (N, C, L)."""
    dim = 1

    def _shape(self, x: torch.Tensor) -> torch.Tensor:
        return as_signal(x)


class CNN2d(_ConvNet):
    """Conv2d stack over square images; input (N, H·W), (N, H, W) or (N, C, H, W)."""
    dim = 2

    def _shape(self, x: torch.Tensor) -> torch.Tensor:
        return as_image(x)
