"""Models with `init=` and `norm=` choices, each resolved by one factory."""
from .build import MODELS, build_model
from .cnn import CNN1d, CNN2d
from .ghost_norm import GhostBatchNorm
from .init import INITS, init_weights
from .mlp import MLP
from .norm import NORMS, make_norm
from .sequence import SequenceClassifier
from .transformer import TransformerClassifier
from .whitening import Whitening1d  # noqa: F401  (the speed-run chapter's frozen first layer)

__all__ = ["MODELS", "build_model", "CNN1d", "CNN2d", "GhostBatchNorm", "INITS", "init_weights", "MLP",
           "NORMS", "make_norm", "SequenceClassifier", "TransformerClassifier"]
