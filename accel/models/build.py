"""Models described as data (a dict), so Lightning can save and rebuild them."""
from __future__ import annotations

from typing import Any, Callable

from torch import nn

from .cnn import CNN1d, CNN2d
from .mlp import MLP
from .resnet import ResNet1d, ResNet2d
from .sequence import SequenceClassifier
from .transformer import TransformerClassifier

MODELS: dict[str, Callable[..., nn.Module]] = {
    "mlp": MLP,
    "cnn1d": CNN1d,
    "cnn2d": CNN2d,
    "sequence": SequenceClassifier,
    "transformer": TransformerClassifier,
    "resnet1d": ResNet1d,
    "resnet2d": ResNet2d,
}


def build_model(spec: dict[str, Any]) -> nn.Module:
    """``{"name": "mlp", "in_features": 40, "hidden": [100, 100], "out_features": 10, ...}``."""
    spec = dict(spec)
    name = spec.pop("name", None)
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(MODELS)}")
    return MODELS[name](**spec)
