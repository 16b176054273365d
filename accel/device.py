"""Where tensors live: the GPU when there is one, else the CPU."""
from __future__ import annotations

import torch


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def accelerator_name() -> str:
    """Lightning's name for the accelerator of :func:`default_device`."""
    return "gpu" if torch.cuda.is_available() else "cpu"
