"""Data sets and LightningDataModules; every set here works offline."""
from .datamodule import DATASETS, TensorDataModule, make_datamodule
from .loader import TensorBatchLoader

__all__ = ["DATASETS", "TensorDataModule", "TensorBatchLoader", "make_datamodule"]
