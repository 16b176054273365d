"""Data augmentation for 1-D signals: the transformations MNIST-1D is generated with.

MNIST-1D (Greydanus 2020) builds each sample from a digit template by padding, scaling,
translating (a circular shift), adding correlated and i.i.d. Gaussian noise, and
shearing (``mnist1d.transform``). Drawing those nuisances afresh for each presentation
of a training sample is the data set's natural augmentation: the "domain
transformations such as translation" and Gaussian input noise the sources recommend.

``mnist1d.transform`` works on one NumPy signal at a time with the global NumPy random
state; these are the same formulas on a batch of torch signals ``(..., L)`` with an
explicit ``torch.Generator`` (deterministic given its seed), applied to the final
40-sample signals:

* :func:`shift`: ``np.concatenate([x[-k:], x[:-k]])`` of ``mnist1d.transform.translate``
  is ``torch.roll(x, k)``; here ``k`` is uniform in ``[-max_shift, max_shift]``;
* :func:`shear`: ``x - c · linspace(-0.5, 0.5, L)`` with ``c = scale · (u - 0.5)``, as
  ``mnist1d.transform.shear``;
* :func:`iid_noise`: ``scale · N(0, 1)`` per sample point, as ``iid_noise_like``;
* :func:`correlated_noise`: ``scale · N(0, 1)`` smoothed by a Gaussian filter of width
  ``sigma`` (SciPy's ``gaussian_filter`` with its defaults: ``truncate = 4``, mode
  ``reflect``), as ``corr_noise_like``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def _check(name: str, value: float, integer: bool = False) -> None:
    ok = value >= 0 and (not integer or float(value).is_integer())
    if not ok:
        kind = "a non-negative integer" if integer else "a number >= 0"
        raise ValueError(f"{name} must be {kind}, got {value!r}")


def shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Each signal (last axis) rolled circularly by its own ``k`` uniform in ``[-max_shift, max_shift]``."""
    _check("max_shift", max_shift, integer=True)
    length = x.shape[-1]
    lead = x.shape[:-1]
    k = torch.randint(-int(max_shift), int(max_shift) + 1, lead, generator=generator).to(x.device)
    source = (torch.arange(length, device=x.device) - k.unsqueeze(-1)) % length
    return torch.gather(x, -1, source)


def shear(x: torch.Tensor, scale: float, generator: torch.Generator) -> torch.Tensor:
    """Each signal minus ``c · linspace(-0.5, 0.5, L)``, ``c = scale · (u - 0.5)``, ``u`` uniform."""
    _check("scale", scale)
    u = torch.rand(x.shape[:-1], generator=generator).to(x.device, x.dtype)
    ramp = torch.linspace(-0.5, 0.5, x.shape[-1], device=x.device, dtype=x.dtype)
    return x - (scale * (u - 0.5)).unsqueeze(-1) * ramp


def iid_noise(x: torch.Tensor, scale: float, generator: torch.Generator) -> torch.Tensor:
    """``x`` plus independent Gaussian noise of standard deviation ``scale``."""
    _check("scale", scale)
    return x + scale * torch.randn(x.shape, generator=generator).to(x.device, x.dtype)


def gaussian_kernel(sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """SciPy's 1-D Gaussian filter weights: radius ``int(truncate · sigma + 0.5)``, summing to 1."""
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma!r}")
    radius = int(truncate * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    w = torch.exp(-0.5 * (t / sigma) ** 2)
    return w / w.sum()


def smooth(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """``scipy.ndimage.gaussian_filter1d(x, sigma, axis=-1)`` (mode ``reflect``: edges mirrored
    including the edge sample)."""
    w = gaussian_kernel(sigma).to(x.device, x.dtype)
    r = (len(w) - 1) // 2
    if x.shape[-1] < r:
        raise ValueError(f"signals of length {x.shape[-1]} are shorter than the filter radius {r}")
    flat = x.reshape(-1, 1, x.shape[-1])
    padded = torch.cat([flat[..., :r].flip(-1), flat, flat[..., -r:].flip(-1)], dim=-1)
    return F.conv1d(padded, w.view(1, 1, -1)).reshape(x.shape)


def correlated_noise(x: torch.Tensor, scale: float, generator: torch.Generator, sigma: float = 2.0) -> torch.Tensor:
    """``x`` plus Gaussian noise of std ``scale`` smoothed along the signal (``mnist1d``'s ``sigma = 2``)."""
    _check("scale", scale)
    noise = scale * torch.randn(x.shape, generator=generator, dtype=torch.float64)
    return x + smooth(noise, sigma).to(x.device, x.dtype)


@dataclass(frozen=True)
class Augment:
    """A random transformation of a batch of signals, drawn afresh at every call.

    Applied in the order of ``mnist1d.transform.transform``: shift, correlated noise,
    i.i.d. noise, shear. A zero disables a step; ``Augment()`` is the identity.
    """

    max_shift: int = 0
    corr_noise: float = 0.0
    iid_noise: float = 0.0
    shear: float = 0.0

    def __post_init__(self) -> None:
        _check("max_shift", self.max_shift, integer=True)
        for name in ("corr_noise", "iid_noise", "shear"):
            _check(name, getattr(self, name))

    @property
    def active(self) -> bool:
        return bool(self.max_shift or self.corr_noise or self.iid_noise or self.shear)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.max_shift:
            x = shift(x, self.max_shift, generator)
        if self.corr_noise:
            x = correlated_noise(x, self.corr_noise, generator)
        if self.iid_noise:
            x = iid_noise(x, self.iid_noise, generator)
        if self.shear:
            x = shear(x, self.shear, generator)
        return x
