"""Per-layer curvature and per-layer learning rates (chapter 9), after LeCun et al. 1998.

"Efficient BackProp" (§4.7) argues that the lower layers of a sigmoid network usually
have smaller second derivatives than the upper ones, so that one global rate, limited
by the sharpest layer, leaves the lower layers crawling; each layer should get a rate
scaled to its own curvature. Here a layer's curvature is the top eigenvalue ``λ_l`` of
its diagonal block of the Hessian (the loss's second derivatives with respect to that
layer's weights and bias alone), found by Lanczos on Hessian-vector products
(:mod:`accel.hessian`); the full network's ``λ`` also couples the layers.

Both arms of the comparison are scaled by curvature and tuned on the same
dimensionless grid: one global rate ``c / λ`` against per-layer rates ``c / λ_l``
(:mod:`accel.optim.layerwise`, the rule ``{layer: 1/λ_l}`` with ``lr = c``).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..hessian import HessianOperator, lanczos
from ..module import Classifier
from ..optim.layerwise import layer_names
from ..seeding import seed_everything
from ..training import train_seeds

FULL = "all layers"


def top_eigenvalue_of(loss_fn: Callable[[], torch.Tensor], params: Sequence[torch.Tensor], *, tol: float = 1e-3,
                      seed: int = 0) -> float:
    """The largest eigenvalue of the Hessian of ``loss_fn()`` with respect to ``params`` only."""
    with torch.enable_grad():
        op = HessianOperator(loss_fn(), list(params))
    if op.dim < 2:
        raise ValueError("a Hessian block needs at least two parameters")
    return float(lanczos(op, op.dim, k=1, which="LA", tol=tol, seed=seed)[-1])


def layer_curvatures(net: nn.Module, loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                     batch: tuple[torch.Tensor, torch.Tensor], *, tol: float = 1e-3, seed: int = 0) -> pd.DataFrame:
    """One row per parameter-owning layer (input to output) and one for the whole network.

    Columns ``layer`` (module path, or :data:`FULL`), ``depth`` (1 = next to the input;
    0 for the whole network) and ``curvature`` (top Hessian eigenvalue of that block).
    Measured in eval mode; the mode is restored.
    """
    x, y = batch
    was = net.training
    net.eval()
    try:
        def value() -> torch.Tensor:
            return loss(net(x), y)
        rows = []
        for depth, name in enumerate(layer_names(net), 1):
            params = [p for p in net.get_submodule(name).parameters(recurse=False) if p.requires_grad]
            rows.append({"layer": name, "depth": depth, "curvature": top_eigenvalue_of(value, params, tol=tol,
                                                                                       seed=seed)})
        every = [p for p in net.parameters() if p.requires_grad]
        rows.append({"layer": FULL, "depth": 0, "curvature": top_eigenvalue_of(value, every, tol=tol, seed=seed)})
    finally:
        net.train(was)
    return pd.DataFrame(rows)


def curvature_survey(build: Callable[[], nn.Module], batch: tuple[torch.Tensor, torch.Tensor], seeds: Sequence[int],
                     loss: Callable[..., torch.Tensor] = torch.nn.functional.cross_entropy, **labels: Any
                     ) -> pd.DataFrame:
    """:func:`layer_curvatures` of ``build()`` at initialization, under each seed (a ``seed`` column)."""
    frames = []
    for s in seeds:
        seed_everything(s)
        frames.append(layer_curvatures(build(), loss, batch, seed=s).assign(seed=s, **labels))
    return pd.concat(frames, ignore_index=True)


def curvature_rule(survey: pd.DataFrame) -> tuple[dict[str, float], float]:
    """The per-layer rule ``{layer: 1/λ_l}`` and the whole network's ``λ``, both geometric means over seeds.

    One rule for all seeds, so that the seeds can train as one stacked ensemble; the
    geometric mean because curvatures spread over orders of magnitude.
    """
    if (survey.curvature <= 0).any():
        bad = survey[survey.curvature <= 0][["layer", "seed"]].to_dict("records")
        raise ValueError(f"a per-layer rate 1/λ needs λ > 0; non-positive top eigenvalues at {bad}")
    geo = survey.groupby("layer", sort=False).curvature.apply(lambda v: float(np.exp(np.log(v).mean())))
    full = float(geo.pop(FULL))
    return {layer: 1.0 / lam for layer, lam in geo.items()}, full


def grid_runs(build: Callable[[], nn.Module], datamodule: Any, epochs: int, seeds: Sequence[int],
              arms: Mapping[str, Callable[[float], dict[str, Any]]], grid: Mapping[str, Sequence[float]], *,
              ensemble: bool = True) -> pd.DataFrame:
    """Train every arm at every scale ``c`` of its grid, all seeds; per-epoch histories with ``arm``, ``c``.

    ``arms`` maps a name to ``c -> optimizer spec``; ``grid`` maps the same names to
    their scales. ``ensemble=True`` trains the seeds of one configuration together
    (:func:`accel.training.train_seeds`), which an elementwise optimizer allows.
    """
    if set(arms) != set(grid):
        raise ValueError(f"arms {sorted(arms)} and grid {sorted(grid)} must name the same arms")
    frames = []
    for name, spec_of in arms.items():
        for c in grid[name]:
            spec = spec_of(float(c))
            frames.append(train_seeds(lambda spec=spec: Classifier(build(), spec), datamodule, epochs, seeds,
                                      ensemble=ensemble, arm=name, c=float(c)))
    return pd.concat(frames, ignore_index=True)


def best_scales(final: pd.DataFrame, metric: str = "train_loss", worst: float | None = None) -> pd.DataFrame:
    """Per arm: the grid scale with the lowest mean ``metric`` over seeds, and whether it lies inside the grid.

    ``worst`` replaces non-finite values (a diverged run) before averaging.
    """
    values = final[metric].astype(float)
    if worst is not None:
        values = values.where(np.isfinite(values), worst)
    means = final.assign(value=values).groupby(["arm", "c"]).value.mean().reset_index()
    rows = []
    for arm, part in means.groupby("arm", sort=False):
        part = part.sort_values("c")
        best = part.loc[part.value.idxmin()]
        rows.append({"arm": arm, "c": float(best.c), "mean": float(best.value),
                     "interior": bool(part.c.min() < best.c < part.c.max())})
    return pd.DataFrame(rows)
