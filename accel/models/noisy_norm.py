"""Santurkar et al.'s "noisy" BatchNorm: BatchNorm followed by a random, time-varying shift and scale.

Santurkar et al. 2018 ("How does batch normalization help optimization?", Sec. 2.1)
test whether BatchNorm works by reducing *internal covariate shift* (the change of each
layer's input distribution while the layers below it train). They add noise after every
BatchNorm layer whose distribution changes at every training step, so that the layers
above see a moving input distribution again, and find the network trains as well as
with plain BatchNorm. Here, at training step ``t`` and channel ``c``::

    y = s[t, c] · BN(x) + m[t, c],    m ~ U(−shift, shift),   s ~ U(1, scale),

the same for every sample and position of that step's batch (the whole distribution of
the channel moves), drawn afresh at every training forward pass. Evaluation replaces the
noise by its expectation, ``E[s] · BN(x) + E[m] = (1 + scale)/2 · BN(x)``, as dropout
replaces its mask by its mean: the layers above were trained (and their BatchNorms
collected running statistics) on inputs of that average scale, not on plain BN outputs.
In evaluation the layer is a fixed affine map, so it folds like BatchNorm
(:mod:`accel.models.fold`).

The draws are a counter-based hash of (seed, step, channel), not a stateful generator:
the same seed gives the same noise on any device and inside :func:`torch.vmap` (a seed
ensemble, :mod:`accel.ensemble`), where each member keeps its own ``seed`` and ``step``
buffers. ``seed=None`` draws the seed from torch's global generator, so seeding before
building the network (as :func:`accel.training.run_seeds` does) fixes the noise too.
"""
from __future__ import annotations

import torch
from torch import nn

_MASK = 0xFFFFFFFF
_MUL = 0x45D9F3B  # Mueller's 32-bit integer hash multiplier; < 2^27, so x·_MUL < 2^59 fits int64


def _mix(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash (two multiply-xorshift rounds) on int64 values in [0, 2^32)."""
    x = (((x >> 16) ^ x) * _MUL) & _MASK
    x = (((x >> 16) ^ x) * _MUL) & _MASK
    return (x >> 16) ^ x


def hash_uniform(seed: torch.Tensor, step: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """U(0, 1) draws, one per entry of ``index`` (int64), from ``(seed, step)``; float64 in (0, 1)."""
    key = _mix(_mix(seed & _MASK) ^ (step & _MASK))
    x = _mix(key ^ (index & _MASK))
    return (x.to(torch.float64) + 0.5) / 2.0**32


class NoisyBatchNorm(nn.Module):
    """``norm`` (a BatchNorm layer) followed by the time-varying shift and scale described above.

    Inputs (N, C) or (N, C, *). ``shift`` is the half-width of the shift's range
    (n_μ), ``scale`` the top of the scale's range (n_σ, at least 1). ``step`` counts the
    training forward passes: the noise of step ``t`` is a function of (seed, t) alone.
    """

    def __init__(self, norm: nn.Module, num_features: int, *, shift: float = 0.5, scale: float = 1.5,
                 seed: int | None = None):
        super().__init__()
        if not shift >= 0:
            raise ValueError(f"shift (the half-width n_μ of U(−n_μ, n_μ)) must be >= 0, got {shift!r}")
        if not scale >= 1:
            raise ValueError(f"scale (the top n_σ of U(1, n_σ)) must be >= 1, got {scale!r}")
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features < 1:
            raise ValueError(f"num_features must be a positive int, got {num_features!r}")
        self.norm = norm
        self.num_features, self.shift, self.scale = num_features, float(shift), float(scale)
        self.register_buffer("seed", torch.tensor(0, dtype=torch.int64))
        self.register_buffer("step", torch.tensor(0, dtype=torch.int64))
        self.reseed(seed)

    def reseed(self, seed: int | None = None) -> None:
        """Set the noise seed (None: draw it from torch's global generator) and restart the steps."""
        if seed is None:
            seed = int(torch.randint(0, 2**31 - 1, ()).item())
        with torch.no_grad():
            self.seed.fill_(int(seed) & _MASK)
            self.step.zero_()

    def noise(self, step: torch.Tensor | int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(m, s)``, each of shape (C,), float64: the shift and scale of training step ``step``
        (None: the step the next training forward pass will use)."""
        t = self.step if step is None else torch.as_tensor(step, dtype=torch.int64, device=self.step.device)
        channels = torch.arange(self.num_features, dtype=torch.int64, device=self.step.device)
        u_shift = hash_uniform(self.seed, t, 2 * channels)
        u_scale = hash_uniform(self.seed, t, 2 * channels + 1)
        return self.shift * (2 * u_shift - 1), 1 + (self.scale - 1) * u_scale

    def expected_scale(self) -> float:
        """``E[s] = (1 + scale)/2``, the factor evaluation applies (the shift's mean is 0)."""
        return 0.5 * (1.0 + self.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(x)
        if not self.training:
            return y * self.expected_scale()
        m, s = self.noise()
        with torch.no_grad():
            self.step.add_(1)
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return y * s.to(y.dtype).view(shape) + m.to(y.dtype).view(shape)

    def extra_repr(self) -> str:
        return f"shift=U(−{self.shift:g}, {self.shift:g}), scale=U(1, {self.scale:g})"
