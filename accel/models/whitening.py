"""A frozen input-whitening layer for 1-D signals, after airbench (Jordan 2024).

airbench's CIFAR-10 speed-run starts its network with a convolution whose filters are
fixed before training, from the training images: the eigenvectors of the covariance of
the image patches, each divided by the square root of its eigenvalue plus a small
``eps``. That layer maps every patch to coordinates in which the patches' covariance is
the identity (the "ZCA/PCA whitening" of LeCun et al. 1998's input-decorrelation advice,
done once, on patches), and it is never trained.

Here, in 1-D: the patches of a signal ``x`` of length ``L`` are its ``L − k + 1``
windows of ``k`` consecutive samples, ``p ∈ R^k``. With ``μ`` the mean patch and
``Σ = E[(p − μ)(p − μ)ᵀ] = V diag(λ) Vᵀ`` their covariance over the training set, the
layer computes ``z = D^{-1/2} Vᵀ (p − μ)`` with ``D = diag(λ + eps)``: a ``Conv1d(1, k, k)``
with weights ``D^{-1/2} Vᵀ`` and bias ``−D^{-1/2} Vᵀ μ``. The whitened patches have mean 0
and covariance ``diag(λ / (λ + eps))``, the identity up to ``eps`` (tested). airbench
centres nothing (it uses the second moment) and concatenates the filters with their
negatives, so that the activation that follows keeps both signs; ``negate=True`` does the
same (``2k`` output channels).
"""
from __future__ import annotations

import torch
from torch import nn


def patches(x: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """All windows of ``kernel_size`` consecutive samples of signals ``(N, L)`` or ``(N, 1, L)``,
    as rows of an ``(N·(L − k + 1), k)`` matrix."""
    if x.ndim == 3:
        if x.shape[1] != 1:
            raise ValueError(f"whitening takes single-channel signals, got {x.shape[1]} channels")
        x = x[:, 0]
    if x.ndim != 2:
        raise ValueError(f"signals must be (N, L) or (N, 1, L), got shape {tuple(x.shape)}")
    if not isinstance(kernel_size, int) or not 1 <= kernel_size <= x.shape[1]:
        raise ValueError(f"kernel_size must be an int in [1, {x.shape[1]}], got {kernel_size!r}")
    return x.unfold(1, kernel_size, 1).reshape(-1, kernel_size)


def whitening_weights(x: torch.Tensor, kernel_size: int, eps: float = 5e-4
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(W, b, λ)``: ``W = D^{-1/2} Vᵀ`` (k × k), ``b = −W μ`` and the eigenvalues ``λ`` of the
    patch covariance, computed in float64."""
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps!r}")
    p = patches(x, kernel_size).double()
    if len(p) < 2:
        raise ValueError("need at least two patches to estimate a covariance")
    mu = p.mean(0)
    centred = p - mu
    cov = centred.T @ centred / (len(p) - 1)
    lam, vec = torch.linalg.eigh(cov)
    w = vec.T / torch.sqrt(lam.clamp_min(0) + eps).unsqueeze(1)
    return w, -(w @ mu), lam


class Whitening1d(nn.Module):
    """A frozen ``Conv1d(1, k, k)`` (``2k`` channels with ``negate``) that whitens each patch.

    Build it with :meth:`from_data` on the training inputs; its parameters have
    ``requires_grad=False``, so no optimizer updates them. Input ``(N, L)`` or ``(N, 1, L)``;
    output ``(N, k or 2k, L − k + 1)``.
    """

    def __init__(self, kernel_size: int, negate: bool = False):
        super().__init__()
        if not isinstance(kernel_size, int) or kernel_size < 1:
            raise ValueError(f"kernel_size must be a positive int, got {kernel_size!r}")
        self.kernel_size, self.negate = kernel_size, bool(negate)
        self.conv = nn.Conv1d(1, kernel_size, kernel_size)
        self.conv.requires_grad_(False)

    @property
    def out_channels(self) -> int:
        return self.kernel_size * (2 if self.negate else 1)

    @classmethod
    def from_data(cls, x: torch.Tensor, kernel_size: int, eps: float = 5e-4, negate: bool = False
                  ) -> "Whitening1d":
        layer = cls(kernel_size, negate)
        layer.fit(x, eps)
        return layer

    @torch.no_grad()
    def fit(self, x: torch.Tensor, eps: float = 5e-4) -> "Whitening1d":
        w, b, _ = whitening_weights(x, self.kernel_size, eps)
        self.conv.weight.copy_(w.unsqueeze(1).to(self.conv.weight.dtype))
        self.conv.bias.copy_(b.to(self.conv.bias.dtype))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.conv(x.unsqueeze(1) if x.ndim == 2 else x)
        return torch.cat([z, -z], dim=1) if self.negate else z
