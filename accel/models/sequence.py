"""A small Transformer-style classifier for a signal read as a sequence (MNIST-1D: 40 steps).

Each time step's scalar is embedded (plus a learned position embedding), passes
``depth`` pre-norm blocks (self-attention, then an MLP, each with a residual), and the
sequence is averaged into a linear head. ``norm`` chooses what the pre-norm layers do
with a (batch, time, feature) tensor:

- ``ln``: LayerNorm over each token's features (Ba et al. 2016), batch-independent;
- ``bn``: BatchNorm with statistics over batch × time per feature;
- ``bn_t``: BatchNorm with statistics per time step and feature, over the batch only
  (the recurrent-BN reading: one set of statistics for every position);
- ``none``: identity.
"""
from __future__ import annotations

import torch
from torch import nn

SEQUENCE_NORMS = ("none", "bn", "bn_t", "ln")


class SequenceNorm(nn.Module):
    """Normalization of a (N, T, d) tensor by name (see the module docstring)."""

    def __init__(self, name: str, d_model: int, length: int):
        super().__init__()
        if name not in SEQUENCE_NORMS:
            raise ValueError(f"unknown sequence norm {name!r}; valid: {', '.join(SEQUENCE_NORMS)}")
        self.name = name
        self.layer = {"none": lambda: nn.Identity(), "ln": lambda: nn.LayerNorm(d_model),
                      "bn": lambda: nn.BatchNorm1d(d_model),
                      "bn_t": lambda: nn.BatchNorm1d(d_model * length)}[name]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.name == "bn":
            return self.layer(x.transpose(1, 2)).transpose(1, 2)
        if self.name == "bn_t":
            return self.layer(x.reshape(len(x), -1)).view_as(x)
        return self.layer(x)


class _Block(nn.Module):
    def __init__(self, d_model: int, heads: int, length: int, norm: str, mlp_ratio: int):
        super().__init__()
        self.norm1 = SequenceNorm(norm, d_model, length)
        self.attn = nn.MultiheadAttention(d_model, heads, batch_first=True)
        self.norm2 = SequenceNorm(norm, d_model, length)
        self.mlp = nn.Sequential(nn.Linear(d_model, mlp_ratio * d_model), nn.GELU(),
                                 nn.Linear(mlp_ratio * d_model, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class SequenceClassifier(nn.Module):
    """Input (N, T) or (N, T, 1); output (N, num_classes)."""

    def __init__(self, length: int = 40, num_classes: int = 10, *, d_model: int = 32, heads: int = 4,
                 depth: int = 2, norm: str = "ln", mlp_ratio: int = 2):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model={d_model} must be a multiple of heads={heads}")
        self.length = length
        self.embed = nn.Linear(1, d_model)
        self.position = nn.Parameter(torch.randn(length, d_model) * 0.02)
        self.blocks = nn.Sequential(*[_Block(d_model, heads, length, norm, mlp_ratio) for _ in range(depth)])
        self.norm = SequenceNorm(norm, d_model, length)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 2:
            x = x.unsqueeze(-1)
        if x.shape[1] != self.length:
            raise ValueError(f"expected sequences of length {self.length}, got {x.shape[1]}")
        h = self.blocks(self.embed(x) + self.position)
        return self.head(self.norm(h).mean(dim=1))
