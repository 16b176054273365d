"""Argument checks shared by the package, so every bad value gets the same clear message."""
from __future__ import annotations

from typing import Any


def positive_int(name: str, value: Any) -> int:
    """``value`` if it is an int >= 1 (not a bool), else a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value
