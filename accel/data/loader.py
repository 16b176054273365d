"""An in-memory batch loader for small tensors.

For data sets that fit in (device) memory a DataLoader's per-sample indexing and
collation dominate the step time; slicing one pre-shuffled tensor is much cheaper.
Lightning accepts any iterable with ``__len__`` as a loader.
"""
from __future__ import annotations

import math
from typing import Iterable, Iterator, Sequence

import torch


class TensorBatchLoader:
    """Yields ``(x[idx], y[idx])`` batches; a fresh seeded permutation per epoch.

    Under data parallelism (``world_size`` processes) every process draws the same
    permutation and cuts the same global batches of ``batch_size × world_size`` rows;
    process ``rank`` takes its ``batch_size`` slice of each. DDP averages the gradients,
    so a step equals one single-process step on the global batch (Goyal et al. 2017).
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, *, shuffle: bool = False,
                 drop_last: bool = False, seed: int = 0, rank: int = 0, world_size: int = 1):
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} rows but y has {len(y)}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        check_batch_size(batch_size, len(x), drop_last)
        check_batch_size(batch_size * world_size, len(x), drop_last)
        self.x, self.y = x, y
        self.batch_size = int(batch_size)
        self.rank, self.world_size = rank, world_size
        self.shuffle, self.drop_last = shuffle, drop_last
        self.seed = seed
        self.epoch = 0

    @property
    def global_batch_size(self) -> int:
        return self.batch_size * self.world_size

    def __len__(self) -> int:
        n, b = len(self.x), self.global_batch_size
        return n // b if self.drop_last else math.ceil(n / b)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.x)
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(n, generator=g).to(self.x.device)
            x, y = self.x[order], self.y[order]
        else:
            x, y = self.x, self.y
        self.epoch += 1
        b = self.global_batch_size
        for i in range(len(self)):
            start = i * b + self.rank * self.batch_size
            sl = slice(start, min(start + self.batch_size, (i + 1) * b))
            yield x[sl], y[sl]


class StackedBatches:
    """Batches of K loaders stacked along a new first dimension: ``(K, B, ...)``, ``(K, B)``.

    A seed ensemble (:mod:`accel.ensemble`) trains K members at once, each on its own data
    order; loader ``k`` is the one a separate run with seed ``k`` would use, so member
    ``k`` sees exactly the batches that run would see. All loaders must have the same
    length and batch sizes (the same data set with different shuffles).
    """

    def __init__(self, loaders: Sequence[Iterable[tuple[torch.Tensor, torch.Tensor]]]):
        if not loaders:
            raise ValueError("StackedBatches needs at least one loader")
        lengths = {len(loader) for loader in loaders}  # type: ignore[arg-type]
        if len(lengths) != 1:
            raise ValueError(f"the member loaders differ in length: {sorted(lengths)}")
        self.loaders = list(loaders)

    def __len__(self) -> int:
        return len(self.loaders[0])  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        for batches in zip(*self.loaders):
            yield tuple(torch.stack(parts) for parts in zip(*batches))


def check_batch_size(batch_size: int, n: int, drop_last: bool = False) -> None:
    """A batch size must be a positive int, and not larger than the set when batches are dropped."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if batch_size > n and drop_last:
        raise ValueError(f"batch_size {batch_size} exceeds the {n} training samples; "
                         f"choose a batch size between 1 and {n}")
