"""Where tensors live: the GPU when there is one, else the CPU."""
from __future__ import annotations

import os

import torch


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def accelerator_name() -> str:
    """Lightning's name for the accelerator of :func:`default_device`."""
    return "gpu" if torch.cuda.is_available() else "cpu"


PRECISION_ENV = "ACCEL_PRECISION"


def default_precision(accelerator: str | None = None) -> str:
    """Lightning's ``precision`` for this machine: bf16 autocast on a GPU that has it.

    On recent GPUs bf16 matrix products run at several times the fp32 rate and need no
    loss scaling (its exponent range is fp32's). The CPU keeps fp32: autocast there is
    slower for the book's small models. ``accelerator`` is the one the Trainer will use
    (default: :func:`accelerator_name`). ``$ACCEL_PRECISION`` (e.g. ``32-true``) overrides.
    """
    env = os.environ.get(PRECISION_ENV)
    if env:
        return env
    if (accelerator or accelerator_name()) == "gpu" and torch.cuda.is_available() \
            and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "32-true"
