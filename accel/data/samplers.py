"""Orders in which the training samples are presented, each a pure function of the seed.

"Efficient BackProp" (LeCun et al. 1998, §4.2) advises shuffling so that successive
examples rarely belong to the same class, and presenting examples with a large error
more often ("emphasizing"), while warning that emphasizing hurts when the large errors
are outliers. Each order here produces one epoch's sample indices from ``(seed, epoch)``
(and, for the emphasizing order, the current per-sample losses):

* :class:`Sorted`: all samples of class 0, then class 1, ...; within a class one fixed
  random order of the seed; the same every epoch;
* :class:`Fixed`: one random permutation of the seed, repeated every epoch;
* :class:`Reshuffled`: a fresh permutation per epoch, drawn exactly as
  :class:`~accel.data.loader.TensorBatchLoader` draws it (so the two agree index for index);
* :class:`Balanced`: a fresh permutation per epoch in which classes are spread evenly, so
  every window of ``B`` consecutive samples holds each class in proportion (±1);
* :class:`LossProportional`: ``n`` draws with replacement, sample ``i`` with probability
  ``uniform / n + (1 - uniform) · ℓ_i / Σℓ``: a mixture of uniform and loss-proportional
  sampling.

:class:`SampledBatchLoader` serves any of them to Lightning (it is a
``TensorBatchLoader``), and :class:`SampledDataModule` is a ``TensorDataModule`` whose
training loader uses one; for :class:`LossProportional` it scores the samples with the
Trainer's current model at the start of every epoch.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F

from .datamodule import TensorDataModule, _rank_and_world
from .loader import TensorBatchLoader

SHUFFLE_STRIDE = 1_000_003  # TensorBatchLoader's generator seed: seed * stride + epoch


def _generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed) * SHUFFLE_STRIDE + int(epoch))


class Order:
    """One epoch's indices: ``indices(epoch, labels, seed, losses)`` → a 1-D LongTensor (CPU).

    ``needs_losses`` says whether ``losses`` (one per sample, the current model's) must
    be given.
    """

    name = "order"
    needs_losses = False

    def indices(self, epoch: int, labels: torch.Tensor, seed: int,
                losses: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Reshuffled(Order):
    """A fresh random permutation every epoch (the usual "shuffle")."""

    name = "reshuffled"

    def indices(self, epoch: int, labels: torch.Tensor, seed: int,
                losses: torch.Tensor | None = None) -> torch.Tensor:
        return torch.randperm(len(labels), generator=_generator(seed, epoch))


class Fixed(Order):
    """One random permutation (the seed's epoch-0 shuffle), presented in every epoch."""

    name = "fixed"

    def indices(self, epoch: int, labels: torch.Tensor, seed: int,
                losses: torch.Tensor | None = None) -> torch.Tensor:
        return torch.randperm(len(labels), generator=_generator(seed, 0))


class Sorted(Order):
    """Grouped by class in increasing label order; within a class, the seed's fixed order."""

    name = "sorted"

    def indices(self, epoch: int, labels: torch.Tensor, seed: int,
                losses: torch.Tensor | None = None) -> torch.Tensor:
        perm = torch.randperm(len(labels), generator=_generator(seed, 0))
        return perm[torch.argsort(labels.cpu()[perm], stable=True)]


class Balanced(Order):
    """A fresh permutation per epoch with the classes interleaved evenly.

    Within each class the samples are shuffled; the ``r``-th of a class of ``n_c`` samples
    gets the key ``(r + u) / n_c`` with ``u`` uniform in [0, 1), and the epoch is sorted by
    key. Every class is thereby spread at a constant rate over the epoch, so any window
    of ``B`` consecutive samples holds ``B · n_c / n`` of class ``c``, up to ±1 (plus one
    for the jitter ``u``).
    """

    name = "balanced"

    def indices(self, epoch: int, labels: torch.Tensor, seed: int,
                losses: torch.Tensor | None = None) -> torch.Tensor:
        g = _generator(seed, epoch)
        labels = labels.cpu()
        perm = torch.randperm(len(labels), generator=g)
        shuffled = labels[perm]
        by_class = torch.argsort(shuffled, stable=True)       # classes in blocks, shuffled within
        counts = torch.bincount(shuffled)
        starts = torch.cumsum(counts, 0) - counts
        sorted_labels = shuffled[by_class]
        rank = torch.arange(len(labels)) - starts[sorted_labels]
        key = (rank.double() + torch.rand(len(labels), generator=g, dtype=torch.float64)) \
            / counts[sorted_labels].double()
        return perm[by_class[torch.argsort(key, stable=True)]]


class LossProportional(Order):
    """``n`` draws with replacement, favouring the samples the current model gets most wrong.

    Probabilities ``p_i = uniform / n + (1 - uniform) · ℓ_i / Σ_j ℓ_j`` ("emphasizing",
    LeCun et al. 1998, §4.2): ``uniform = 1`` is uniform sampling with replacement; at
    ``uniform = 0.5`` every sample keeps at least half its uniform share. Losses must be
    finite and ≥ 0.
    """

    name = "loss_proportional"
    needs_losses = True

    def __init__(self, uniform: float = 0.5):
        if not 0 <= uniform <= 1:
            raise ValueError(f"uniform must be in [0, 1], got {uniform!r}")
        self.uniform = float(uniform)

    def probabilities(self, losses: torch.Tensor) -> torch.Tensor:
        losses = torch.as_tensor(losses, dtype=torch.float64).cpu()
        if losses.ndim != 1 or not torch.isfinite(losses).all() or (losses < 0).any():
            raise ValueError("losses must be a 1-D tensor of finite values >= 0")
        n, total = len(losses), float(losses.sum())
        share = losses / total if total > 0 else torch.full_like(losses, 1.0 / n)
        return self.uniform / n + (1 - self.uniform) * share

    def indices(self, epoch: int, labels: torch.Tensor, seed: int,
                losses: torch.Tensor | None = None) -> torch.Tensor:
        if losses is None:
            raise ValueError("LossProportional needs the current per-sample losses")
        if len(losses) != len(labels):
            raise ValueError(f"got {len(losses)} losses for {len(labels)} samples")
        p = self.probabilities(losses)
        return torch.multinomial(p, len(labels), replacement=True, generator=_generator(seed, epoch))

    def __repr__(self) -> str:
        return f"LossProportional(uniform={self.uniform:g})"


ORDERS: dict[str, Callable[..., Order]] = {
    "reshuffled": Reshuffled, "fixed": Fixed, "sorted": Sorted, "balanced": Balanced,
    "loss_proportional": LossProportional,
}


def make_order(name: str, **kwargs: Any) -> Order:
    """An order by name (:data:`ORDERS`); ``kwargs`` go to its constructor."""
    if name not in ORDERS:
        raise ValueError(f"unknown order {name!r}; valid: {', '.join(ORDERS)}")
    return ORDERS[name](**kwargs)


class SampledBatchLoader(TensorBatchLoader):
    """A :class:`TensorBatchLoader` whose epoch order comes from an :class:`Order`.

    ``losses`` (a callable returning one loss per sample) is called at the start of each
    epoch when the order needs it. Under data parallelism every process computes the same
    order and takes its slice of each global batch, as the parent does.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, *, order: Order,
                 losses: Callable[[], torch.Tensor] | None = None, **kwargs: Any):
        if not isinstance(order, Order):
            raise ValueError(f"order must be an accel.data.samplers.Order, got {order!r}; "
                             f"valid names for make_order: {', '.join(ORDERS)}")
        if order.needs_losses and losses is None:
            raise ValueError(f"{order!r} needs a `losses` callable giving the current per-sample losses")
        kwargs.pop("shuffle", None)
        super().__init__(x, y, batch_size, shuffle=False, **kwargs)
        self.order, self.losses = order, losses

    def epoch_indices(self) -> torch.Tensor:
        """This epoch's order (without advancing the epoch)."""
        scores = self.losses() if self.order.needs_losses else None
        return self.order.indices(self.epoch, self.y, self.seed, scores)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        idx = self.epoch_indices().to(self.x.device)
        self.epoch += 1
        x, y = self.x[idx], self.y[idx]
        b = self.global_batch_size
        for i in range(len(self)):
            start = i * b + self.rank * self.batch_size
            sl = slice(start, min(start + self.batch_size, (i + 1) * b))
            yield x[sl], y[sl]


@torch.no_grad()
def per_sample_losses(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """Cross-entropy of every sample under ``model`` in eval mode (its mode is restored)."""
    was_training = model.training
    model.eval()
    try:
        parts = [F.cross_entropy(model(x[i:i + chunk]), y[i:i + chunk], reduction="none")
                 for i in range(0, len(x), chunk)]
    finally:
        model.train(was_training)
    return torch.cat(parts).float().cpu()


class SampledDataModule(TensorDataModule):
    """A :class:`TensorDataModule` whose training batches follow ``order`` (an :class:`Order` or its name).

    A :class:`LossProportional` order scores the training samples with the Trainer's
    current model at the start of each epoch; the loader is rebuilt every epoch only if
    the Trainer reloads it, so it computes the scores lazily, when iteration starts.
    """

    def __init__(self, *args: Any, order: Order | str = "reshuffled", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.order = make_order(order) if isinstance(order, str) else order
        if not isinstance(self.order, Order):
            raise ValueError(f"order must be an Order or one of {', '.join(ORDERS)}, got {order!r}")

    def _current_losses(self) -> torch.Tensor:
        trainer = getattr(self, "trainer", None)
        module = getattr(trainer, "lightning_module", None)
        if module is None:
            raise ValueError("a loss-proportional order needs the data module attached to a Trainer")
        return per_sample_losses(module, self.x_train, self.y_train)

    def train_dataloader(self) -> SampledBatchLoader:
        rank, world = _rank_and_world(self)
        loader = SampledBatchLoader(self.x_train, self.y_train, self.batch_size, order=self.order,
                                    losses=self._current_losses if self.order.needs_losses else None,
                                    drop_last=self.drop_last, seed=self.seed, rank=rank, world_size=world)
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            loader.epoch = int(trainer.current_epoch)
        return loader
