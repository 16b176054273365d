"""Fold BatchNorm into the convolution or linear layer before it, for inference.

In evaluation mode BatchNorm is a fixed per-channel affine map of its input ``z``::

    BN(z) = γ (z − μ) / √(σ² + ε) + β,      z = W x + b,

so ``BN(W x + b) = W' x + b'`` with ``W' = W · γ/√(σ² + ε)`` (per output channel) and
``b' = (b − μ) γ/√(σ² + ε) + β``: the normalization costs nothing at inference once
folded (Ioffe & Szegedy 2015, Sec. 3.2, note that the normalized network is a linear
transform in inference). The arithmetic is PyTorch's own
(:func:`torch.nn.utils.fusion.fuse_conv_bn_eval`, :func:`~torch.nn.utils.fusion.fuse_linear_bn_eval`).

Pairs are found inside ``nn.Sequential`` containers: a Linear/Conv1d/Conv2d immediately
followed by a BatchNorm (plain, ghost, or the noisy BN of :mod:`accel.models.noisy_norm`,
which is BatchNorm times its expected noise scale in evaluation). Weight-standardized layers fold through their
effective weight. A BatchNorm with no layer right before it (the input normalization of a
pre-activation residual block, which follows an addition) is left in place and counted.
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from .noisy_norm import NoisyBatchNorm
from .ws import _ScaledWS, WSConv1d, WSConv2d, WSLinear, standardize

_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)


def _batchnorm(module: nn.Module) -> _BatchNorm | None:
    """The BatchNorm a module applies in evaluation mode, or None (for the noisy BN, a copy
    whose affine parameters include the expected noise scale it applies in evaluation)."""
    if isinstance(module, NoisyBatchNorm):
        inner = _batchnorm(module.norm)
        if inner is None or not inner.affine:
            return None
        scaled = copy.deepcopy(inner)
        with torch.no_grad():
            scaled.weight.mul_(module.expected_scale())
            scaled.bias.mul_(module.expected_scale())
        return scaled
    return module if isinstance(module, _BatchNorm) and module.track_running_stats else None


def _plain(layer: nn.Module) -> nn.Module:
    """A plain Linear/Conv with ``layer``'s effective weight (weight standardization applied)."""
    if isinstance(layer, _ScaledWS):
        weight = layer.scaled_weight()
    elif isinstance(layer, (WSLinear, WSConv1d, WSConv2d)):
        weight = standardize(layer.weight)
    else:
        return copy.deepcopy(layer)
    if isinstance(layer, nn.Linear):
        plain: nn.Module = nn.Linear(layer.in_features, layer.out_features, layer.bias is not None)
    else:
        cls = nn.Conv1d if isinstance(layer, nn.Conv1d) else nn.Conv2d
        plain = cls(layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride,
                    padding=layer.padding, dilation=layer.dilation, groups=layer.groups,
                    bias=layer.bias is not None, padding_mode=layer.padding_mode)
    plain = plain.to(device=layer.weight.device, dtype=layer.weight.dtype)
    with torch.no_grad():
        plain.weight.copy_(weight)
        if layer.bias is not None:
            plain.bias.copy_(layer.bias)
    return plain


def _fuse(layer: nn.Module, bn: _BatchNorm) -> nn.Module:
    plain = _plain(layer).eval()
    if isinstance(plain, nn.Linear):
        return fuse_linear_bn_eval(plain, bn)
    return fuse_conv_bn_eval(plain, bn)


def count_batchnorms(model: nn.Module) -> int:
    """BatchNorm layers (any kind) the model applies in evaluation mode."""
    return sum(_batchnorm(m) is not None for m in model.modules() if not isinstance(m, NoisyBatchNorm))


def fold_batchnorm(model: nn.Module) -> tuple[nn.Module, int, int]:
    """A copy of ``model`` in evaluation mode with every foldable BatchNorm folded away.

    Returns ``(folded, n_folded, n_left)``: how many BatchNorm layers were folded into
    the layer before them and how many had none and remain. The copy's outputs equal the
    original's in evaluation mode up to floating-point rounding; the original is untouched.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"fold_batchnorm needs an nn.Module, got {type(model).__name__}")
    folded = copy.deepcopy(model).eval()
    n_folded = 0
    with torch.no_grad():
        for container in list(folded.modules()):
            if not isinstance(container, nn.Sequential):
                continue
            names = list(container._modules)
            for first, second in zip(names, names[1:]):
                layer, bn = container._modules[first], _batchnorm(container._modules[second])
                if isinstance(layer, _LAYERS) and bn is not None and layer.weight.shape[0] == bn.num_features:
                    container._modules[first] = _fuse(layer, bn)
                    container._modules[second] = nn.Identity()
                    n_folded += 1
    return folded, n_folded, count_batchnorms(folded)
