"""Models with `init=` and `norm=` choices, each resolved by one factory."""
from .build import MODELS, build_model
from .cnn import CNN1d, CNN2d
from .init import INITS, init_weights
from .mlp import MLP
from .norm import NORMS, make_norm

__all__ = ["MODELS", "build_model", "CNN1d", "CNN2d", "INITS", "init_weights", "MLP", "NORMS", "make_norm"]
