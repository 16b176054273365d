"""A small residual network, 1-D (MNIST-1D signals) and 2-D (images), for studying what BatchNorm does.

Blocks are pre-activation by default (He et al. 2016, "Identity mappings in deep residual
networks"): ``h_{l+1} = skip(h_l) + α · f(pre(h_l))`` with ``pre = act ∘ norm`` and
``f = conv → norm → act → conv``. The first block of every stage after the first halves
the length (stride 2) and doubles nothing on its own: its skip is a 1×1 projection of
``pre(h_l)``, as in He et al.'s pre-activation ResNets. ``preact=False`` gives the
original post-activation block (He et al. 2015), ``act(skip(h) + α · norm(conv(act(norm(conv(h))))))``,
in which every BatchNorm follows a convolution (so all of them fold, :mod:`accel.models.fold`).

``norm`` is any of :data:`accel.models.norm.NORMS` or ``noisy_bn`` (BatchNorm with
Santurkar et al.'s time-varying noise, :mod:`accel.models.noisy_norm`). The residual branch:

- ``alpha``: a fixed scalar on the branch (None: 0.2 for ``sws``, Brock et al. 2021's
  normalizer-free default, else 1);
- ``skipinit=True``: a learnable scalar on the branch initialized at 0, so every block
  starts as the identity (De & Smith 2020); ``alpha`` is then unused;
- ``norm="sws"`` builds Brock et al.'s normalizer-free block: scaled weight-standardized
  convolutions (:mod:`accel.models.ws`), and the branch input divided by ``β_l``, the
  expected standard deviation of ``h_l`` (``β_l² = 1 + l·α²`` within a stage, reset to 1
  after each transition), so that every branch sees unit-variance inputs at initialization.

Weights are He-initialized (``init="he_normal"``), as the ResNet papers do; the noisy BN's
seeds are drawn after the weights, so ``noisy_bn`` and ``bn`` nets built after the same
seed start from the same weights (a paired comparison). Every block is a
:class:`ResidualBlock` whose ``shortcut`` and ``residual`` submodules the signal-propagation
helpers hook (:mod:`accel.experiments.signal_prop`).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from .activation import make_activation
from .cnn import as_image, as_signal
from .init import init_weights
from .noisy_norm import NoisyBatchNorm
from .norm import NORMS, check_norm, make_norm
from .ws import weight_layer

RESNET_NORMS = NORMS + ("noisy_bn",)
NF_ALPHA = 0.2  # Brock et al. 2021a/b


class Scale(nn.Module):
    """Multiply by a scalar: fixed (``alpha``) or learnable (SkipInit, initialized at ``alpha``)."""

    def __init__(self, alpha: float, learnable: bool = False):
        super().__init__()
        value = torch.tensor(float(alpha))
        if learnable:
            self.alpha = nn.Parameter(value)
        else:
            self.register_buffer("alpha", value)
        self.learnable = learnable

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.alpha

    def extra_repr(self) -> str:
        return f"alpha={float(self.alpha.detach()):g}, learnable={self.learnable}"


class InputScale(nn.Module):
    """Divide by a fixed ``beta`` (the expected std of the block input, normalizer-free nets)."""

    def __init__(self, beta: float):
        super().__init__()
        self.beta = float(beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / self.beta if self.beta != 1.0 else x

    def extra_repr(self) -> str:
        return f"beta={self.beta:.4g}"


class ResidualBlock(nn.Module):
    """``out = shortcut(·) + residual(pre(x))`` (pre-activation) or ``act(shortcut(x) + residual(x))``.

    ``project``: the shortcut is a strided 1×1 convolution (a transition block), applied to
    ``pre(x)`` in a pre-activation block and to ``x`` (then normalized) in a post-activation one.
    """

    def __init__(self, pre: nn.Module, residual: nn.Module, shortcut: nn.Module, *, project: bool,
                 preact: bool, post: nn.Module | None = None):
        super().__init__()
        self.pre, self.residual, self.shortcut = pre, residual, shortcut
        self.project, self.preact = project, preact
        self.post = post if post is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.preact:
            p = self.pre(x)
            return self.shortcut(p if self.project else x) + self.residual(p)
        return self.post(self.shortcut(x) + self.residual(x))


class _ResNet(nn.Module):
    dim = 1

    def __init__(self, in_channels: int = 1, widths: Sequence[int] = (16, 32, 64), blocks: int = 2,
                 num_classes: int = 10, *, norm: str = "bn", activation: str = "relu",
                 alpha: float | None = None, skipinit: bool = False, preact: bool = True,
                 kernel_size: int = 3, stem_stride: int = 1, init: str = "he_normal", groups: int = 8,
                 ghost_size: int | None = None, noise_shift: float = 0.5, noise_scale: float = 1.5):
        super().__init__()
        if norm not in RESNET_NORMS:
            raise ValueError(f"unknown norm {norm!r}; valid: {', '.join(RESNET_NORMS)}")
        base = "bn" if norm == "noisy_bn" else check_norm(norm)
        if ghost_size is not None and base != "bn":
            raise ValueError(f"ghost_size applies to norm='bn' or 'noisy_bn' only, not {norm!r}")
        widths = list(widths)
        if not widths or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
            raise ValueError(f"widths must be a non-empty list of positive ints, got {widths!r}")
        if isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 1:
            raise ValueError(f"blocks (residual blocks per stage) must be a positive int, got {blocks!r}")
        if kernel_size % 2 == 0 or kernel_size < 1:
            raise ValueError(f"kernel_size must be a positive odd int (same padding), got {kernel_size!r}")
        alpha = (NF_ALPHA if norm == "sws" else 1.0) if alpha is None else float(alpha)
        if not alpha >= 0:
            raise ValueError(f"alpha (the residual-branch scale) must be >= 0, got {alpha!r}")
        self.norm, self.alpha, self.skipinit, self.preact = norm, alpha, bool(skipinit), bool(preact)
        self._base, self._act, self._groups, self._ghost = base, activation, groups, ghost_size
        self._noise = dict(shift=noise_shift, scale=noise_scale)
        stem = [self._conv(None, in_channels, widths[0], kernel_size, stride=stem_stride, padding=kernel_size // 2)]
        if not preact:  # a post-activation net normalizes and activates the stem's output itself
            stem += [self._norm(widths[0]), make_activation(activation)]
        self.stem = nn.Sequential(*stem)
        layers: list[nn.Module] = []
        width, expected_var = widths[0], 1.0  # Var(h) at initialization, as NF-ResNets track it
        for s, w in enumerate(widths):
            for b in range(blocks):
                stride = 2 if (s > 0 and b == 0) else 1
                beta = math.sqrt(expected_var) if norm == "sws" else 1.0
                layers.append(self._block(width, w, stride, beta, kernel_size))
                if stride != 1 or width != w:
                    expected_var = 1.0  # a transition's skip is a fresh (unit-variance) projection
                expected_var += 0.0 if self.skipinit else alpha ** 2
                width = w
        self.layers = nn.Sequential(*layers)
        final = [self._norm(width), make_activation(activation)] if preact else []
        pool = nn.AdaptiveAvgPool1d(1) if self.dim == 1 else nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(*final, pool, nn.Flatten(), nn.Linear(width, num_classes))
        init_weights(self, init)
        for m in self.modules():  # noise seeds after the weights: a noisy_bn net starts from the bn net's weights
            if isinstance(m, NoisyBatchNorm):
                m.reseed()

    def _conv(self, act: str | None, *args, **kwargs) -> nn.Module:
        """A convolution of this net's kind; scaled-WS ones get the gain of ``act``, the
        activation feeding them."""
        return weight_layer(self._base, f"conv{self.dim}d", act)(*args, **kwargs)

    def _norm(self, c: int) -> nn.Module:
        if self.norm == "noisy_bn":
            return NoisyBatchNorm(make_norm("bn", c, self.dim, ghost_size=self._ghost), c, seed=0, **self._noise)
        return make_norm(self._base, c, self.dim, self._groups, self._ghost)

    def _block(self, c_in: int, c_out: int, stride: int, beta: float, k: int) -> ResidualBlock:
        act = self._act
        project = stride != 1 or c_in != c_out
        scale = Scale(0.0, learnable=True) if self.skipinit else Scale(self.alpha)
        if self.preact:
            pre = nn.Sequential(InputScale(beta), self._norm(c_in), make_activation(act))
            residual = nn.Sequential(self._conv(act, c_in, c_out, k, stride=stride, padding=k // 2),
                                     self._norm(c_out), make_activation(act),
                                     self._conv(act, c_out, c_out, k, padding=k // 2), scale)
            shortcut = self._conv(act, c_in, c_out, 1, stride=stride) if project else nn.Identity()
            return ResidualBlock(pre, residual, shortcut, project=project, preact=True)
        residual = nn.Sequential(self._conv(act, c_in, c_out, k, stride=stride, padding=k // 2),
                                 self._norm(c_out), make_activation(act),
                                 self._conv(act, c_out, c_out, k, padding=k // 2), self._norm(c_out), scale)
        shortcut = nn.Sequential(self._conv(act, c_in, c_out, 1, stride=stride), self._norm(c_out)) \
            if project else nn.Identity()
        return ResidualBlock(nn.Identity(), residual, shortcut, project=project, preact=False,
                             post=make_activation(act))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.stem(self._shape(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def _shape(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class ResNet1d(_ResNet):
    """Residual network over a length-L signal; input (N, L) or (N, C, L)."""
    dim = 1

    def _shape(self, x: torch.Tensor) -> torch.Tensor:
        return as_signal(x)


class ResNet2d(_ResNet):
    """Residual network over square images; input (N, H·W), (N, H, W) or (N, C, H, W)."""
    dim = 2

    def _shape(self, x: torch.Tensor) -> torch.Tensor:
        return as_image(x)
