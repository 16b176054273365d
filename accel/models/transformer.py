"""A small Transformer encoder classifier for signals read as sequences of scalars.

MNIST-1D's 40 samples become 40 tokens: each scalar is embedded by a linear map, a
learned position embedding is added, ``torch.nn.TransformerEncoder`` layers (Vaswani et
al. 2017) mix the tokens, and the mean token feeds a linear head. ``norm_first=False``
is the original post-LN layer, whose early training is the one that needs learning-rate
warm-up (Xiong et al. 2020; Liu et al. 2020); ``norm_first=True`` is pre-LN, with a final
LayerNorm before the head.
"""
from __future__ import annotations

import torch
from torch import nn


class TransformerClassifier(nn.Module):
    """Input ``(N, L)`` (or ``(N, L, 1)``) → logits ``(N, num_classes)``."""

    def __init__(self, seq_len: int = 40, num_classes: int = 10, *, d_model: int = 32, nhead: int = 4,
                 num_layers: int = 2, dim_feedforward: int = 64, dropout: float = 0.0,
                 norm_first: bool = False, activation: str = "relu"):
        super().__init__()
        for name, value in dict(seq_len=seq_len, num_classes=num_classes, d_model=d_model, nhead=nhead,
                                num_layers=num_layers, dim_feedforward=dim_feedforward).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if d_model % nhead:
            raise ValueError(f"d_model ({d_model}) must be divisible by nhead ({nhead})")
        if activation not in ("relu", "gelu"):
            raise ValueError(f"unknown activation {activation!r}; valid: relu, gelu")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.seq_len = seq_len
        self.embed = nn.Linear(1, d_model)
        self.position = nn.Parameter(torch.randn(1, seq_len, d_model) * 0.02)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, activation=activation,
                                           batch_first=True, norm_first=norm_first)
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 2:
            x = x.unsqueeze(-1)
        if x.ndim != 3 or x.shape[1] != self.seq_len or x.shape[2] != 1:
            raise ValueError(f"expected input (N, {self.seq_len}) or (N, {self.seq_len}, 1), got {tuple(x.shape)}")
        h = self.encoder(self.embed(x) + self.position)
        return self.head(self.norm(h.mean(dim=1)))
