"""Pipeline (model) parallelism: an ``nn.Sequential`` cut into stages, one per process.

Each stage holds only its own layers. A batch is split into ``m`` micro-batches and run
with GPipe's schedule (Huang et al. 2019): every micro-batch forward through the stages,
then every micro-batch backward; activations go forward with ``send``/``recv``, their
gradients go back the same way. The loss is the mean over the whole batch, so each
micro-batch's mean loss is weighted by its share of the batch and the accumulated
gradients equal the single-process ones (up to float summation order).

Written as explicit sends and receives rather than with ``torch.distributed.pipelining``
because every transfer and every idle moment is then visible and timed: a stage is *busy*
while it runs its layers, *idle* while it waits for a neighbour; the bubble is the idle
fraction of the step.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


def split(model: nn.Sequential, cuts: Sequence[int]) -> list[nn.Sequential]:
    """The stages of ``model`` cut before each index in ``cuts`` (increasing, inside the model)."""
    cuts = list(cuts)
    if cuts != sorted(set(cuts)) or not all(0 < c < len(model) for c in cuts):
        raise ValueError(f"cuts must be increasing indices in 1..{len(model) - 1}, got {cuts}")
    bounds = [0, *cuts, len(model)]
    return [nn.Sequential(*list(model)[a:b]) for a, b in zip(bounds, bounds[1:])]


def micro_batches(x: torch.Tensor, m: int) -> list[torch.Tensor]:
    """``x`` in ``m`` equal micro-batches (the batch must divide by ``m``)."""
    if m < 1 or len(x) % m:
        raise ValueError(f"a batch of {len(x)} does not split into {m} equal micro-batches")
    return list(x.chunk(m))


def cut_shapes(stages: Sequence[nn.Module], sample: torch.Tensor) -> list[torch.Size]:
    """Shape of the activation entering each stage after the first, for input ``sample``."""
    shapes = []
    with torch.no_grad():
        h = sample
        for stage in stages[:-1]:
            h = stage(h)
            shapes.append(h.shape)
    return shapes


@dataclass
class StepTimes:
    """One pipeline step on one stage: wall, busy (running layers) and bytes sent."""
    wall: float = 0.0
    busy: float = 0.0
    sent: int = 0
    loss: float | None = None
    grads: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def idle(self) -> float:
        return 1.0 - self.busy / self.wall if self.wall > 0 else float("nan")


def pipeline_step(stage: nn.Module, rank: int, world: int, x: torch.Tensor, y: torch.Tensor, m: int,
                  shapes: Sequence[torch.Size], keep_grads: bool = False) -> StepTimes:
    """One forward/backward step of stage ``rank`` of ``world`` with ``m`` micro-batches (GPipe).

    Every rank passes the whole batch ``x, y`` (only the first stage reads ``x``, only the
    last ``y``); ``shapes`` from :func:`cut_shapes` for the whole batch. Gradients
    accumulate in the stage's parameters (zero them first); ``keep_grads`` copies them
    into the result.
    """
    first, last = rank == 0, rank == world - 1
    xs, ys = micro_batches(x, m), micro_batches(y, m)
    n = len(x)
    out = StepTimes()
    inputs, outputs, losses, pending = [], [], [], []
    tick = time.perf_counter
    start = tick()
    for j in range(m):
        if first:
            h = xs[j]
        else:
            h = torch.empty((len(xs[j]), *shapes[rank - 1][1:]))
            dist.recv(h, rank - 1)
            h.requires_grad_(True)
        t0 = tick()
        z = stage(h)
        if last:
            z = F.cross_entropy(z, ys[j]) * (len(ys[j]) / n)
        out.busy += tick() - t0
        if not last:
            pending.append(dist.isend(z.detach(), rank + 1))
            out.sent += z.numel() * z.element_size()
        inputs.append(h)
        outputs.append(z)
    for j in reversed(range(m)):
        z = outputs[j]
        if last:
            t0 = tick()
            z.backward()
            losses.append(float(z.detach()))
        else:
            g = torch.empty_like(z)
            dist.recv(g, rank + 1)
            t0 = tick()
            z.backward(g)
        out.busy += tick() - t0
        if not first:
            pending.append(dist.isend(inputs[j].grad, rank - 1))
            out.sent += inputs[j].grad.numel() * inputs[j].grad.element_size()
    for work in pending:
        work.wait()
    out.wall = tick() - start
    if last:
        out.loss = sum(losses)
    if keep_grads:
        out.grads = {k: p.grad.detach().clone() for k, p in stage.named_parameters()}
    return out


def reference_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, dict[str, torch.Tensor]]:
    """Loss and gradients of the whole model in one process (what the pipeline must equal)."""
    model.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    return float(loss.detach()), {k: p.grad.detach().clone() for k, p in model.named_parameters()}


def stage_names(model: nn.Sequential, cuts: Sequence[int], rank: int) -> dict[str, str]:
    """Map a stage's parameter names (``"0.weight"``) to the whole model's (``"4.weight"``)."""
    bounds = [0, *cuts, len(model)]
    offset = bounds[rank]
    names = {}
    for local, module in enumerate(list(model)[bounds[rank]:bounds[rank + 1]]):
        for pname, _ in module.named_parameters():
            names[f"{local}.{pname}"] = f"{local + offset}.{pname}"
    return names


def as_sequential(model: nn.Module) -> nn.Sequential:
    """An ``accel`` model as one flat ``nn.Sequential`` (an MLP already is one; a CNN is
    its ``features`` then its ``head``), so it can be cut between any two layers."""
    if isinstance(model, nn.Sequential):
        return model
    if hasattr(model, "features") and hasattr(model, "head"):
        return nn.Sequential(*model.features, *model.head)
    raise ValueError(f"cannot flatten {type(model).__name__} into a sequence of layers")


def cut_before(model: nn.Sequential, kind: type[nn.Module], k: int) -> int:
    """The index of the ``k``-th (1-based) layer of type ``kind``: a cut there puts that
    layer and everything after it on the next stage."""
    found = [i for i, layer in enumerate(model) if isinstance(layer, kind)]
    if not 1 <= k <= len(found) or found[k - 1] == 0:
        raise ValueError(f"model has {len(found)} {kind.__name__} layers; cannot cut before number {k}")
    return found[k - 1]


def stage_step(rank: int, world: int, model: nn.Sequential, cuts: Sequence[int], x: torch.Tensor,
               y: torch.Tensor, m: int) -> dict:
    """One pipelined step of stage ``rank`` (each rank calls it with the same whole ``model``,
    of which it keeps only its stage): the loss (last stage, else None) and the stage's
    gradients under the whole model's parameter names, to compare with :func:`reference_step`."""
    stage = split(model, cuts)[rank]
    stage.zero_grad(set_to_none=True)
    shapes = cut_shapes(split(model, cuts), x[: len(x) // m])
    dist.barrier()
    t = pipeline_step(stage, rank, world, x, y, m, shapes, keep_grads=True)
    names = stage_names(model, cuts, rank)
    return {"loss": t.loss, "grads": {names[k]: g for k, g in t.grads.items()}, "sent": t.sent}
