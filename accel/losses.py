"""Training losses by name, so a run's loss is data like its optimizer and schedule."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def one_hot_mse(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``½‖f(x) − onehot(y)‖²`` averaged over samples: the square loss Cohen et al. (2021)
    train classifiers with, whose edge-of-stability curves are the cleanest."""
    target = F.one_hot(y, logits.shape[1]).to(logits.dtype)
    return 0.5 * ((logits - target) ** 2).sum(1).mean()


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "cross_entropy": F.cross_entropy,
    "mse": one_hot_mse,
}


def get_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; valid: {', '.join(LOSSES)}")
    return LOSSES[name]
