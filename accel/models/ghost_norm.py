"""Ghost (virtual-batch) BatchNorm: Hoffer et al. 2017, "Train longer, generalize better".

BatchNorm whose statistics come from *ghost batches* of ``ghost_size`` samples inside
the batch the optimizer sees, so the batch that normalizes can be made smaller than the
batch that is averaged into the gradient. The chapter uses it to vary only the
normalization batch (Wu & He 2018's batch-size sensitivity) at a fixed optimizer batch.

Training: each ghost batch ``x_g`` is normalized with its own mean and biased variance,
exactly as ``nn.BatchNorm`` would normalize ``x_g`` alone. The running statistics are
updated once per forward pass with the mean over ghosts of their means and of their
unbiased variances (Hoffer et al.'s Algorithm 1 averages the ghost statistics too).
Evaluation uses the running statistics, as BatchNorm does. ``ghost_size=None`` (or a
batch no larger than ``ghost_size``) is ordinary BatchNorm.
"""
from __future__ import annotations

import torch
from torch.nn.modules.batchnorm import _BatchNorm


class GhostBatchNorm(_BatchNorm):
    """BatchNorm over ghost batches of ``ghost_size`` samples; inputs (N, C) or (N, C, *)."""

    def __init__(self, num_features: int, ghost_size: int | None = None, eps: float = 1e-5,
                 momentum: float = 0.1, affine: bool = True):
        if ghost_size is not None and (isinstance(ghost_size, bool) or not isinstance(ghost_size, int)
                                       or ghost_size < 2):
            raise ValueError(f"ghost_size must be an int >= 2 (statistics need two samples) or None, "
                             f"got {ghost_size!r}")
        super().__init__(num_features, eps=eps, momentum=momentum, affine=affine, track_running_stats=True)
        self.ghost_size = ghost_size

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected input of shape (N, C) or (N, C, *), got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        n, k = x.shape[0], self.ghost_size
        if not self.training or k is None or n <= k:
            return super().forward(x)
        if n % k:
            raise ValueError(f"a training batch of {n} is not a multiple of ghost_size={k}; "
                             f"use a batch size that is a multiple and drop_last=True")
        g = x.reshape(n // k, k, *x.shape[1:])          # (ghosts, k, C, *)
        dims = (1, *range(3, g.dim()))                   # over the ghost's samples and positions
        mean = g.mean(dim=dims, keepdim=True)
        var = g.var(dim=dims, keepdim=True, unbiased=False)
        y = ((g - mean) / torch.sqrt(var + self.eps)).reshape_as(x)
        with torch.no_grad():
            m = k * x[0, 0].numel()                      # values per channel in one ghost
            self.running_mean.mul_(1 - self.momentum).add_(mean.mean(0).flatten() * self.momentum)
            unbiased = var.mean(0).flatten() * m / (m - 1)
            self.running_var.mul_(1 - self.momentum).add_(unbiased * self.momentum)
            self.num_batches_tracked.add_(1)
        if self.affine:
            shape = (1, -1) + (1,) * (x.dim() - 2)
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, ghost_size={self.ghost_size}"
