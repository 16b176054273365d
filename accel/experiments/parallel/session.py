"""Every two-process measurement of the chapter, in one launch of two ranks.

Starting a rank costs seconds (a fresh interpreter imports torch), so one launch runs
them all, one block after another: the α–β timings, the data-parallel step split, the
pipeline's bubble against the number of micro-batches, the two cuts of a CNN, the
straggler runs, and at the end Lightning's DDP check. Inside each block the
configurations are interleaved (every repeat visits all of them, in a rotated order),
so a slow spell of a shared machine spreads over the configurations a claim compares.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ...models import build_model
from ...seeding import seed_everything
from . import comm, ddp_check, pipeline
from .data_parallel import dp_step_times
from .launch import launch
from .stragglers import Delay, straggler_steps

PIPE_MODEL = {"name": "mlp", "in_features": 512, "hidden": [512] * 8, "out_features": 10}
CUT_MODEL = {"name": "cnn2d", "in_channels": 1, "channels": [16, 32, 64, 128], "num_classes": 10,
             "kernel_size": 3}
CUT_INPUT = (1, 64, 64)


@dataclass
class Plan:
    """What one session measures (sizes in bytes, times in seconds)."""
    repeats: int = 3
    sizes: list[int] = field(default_factory=lambda: [2 ** k for k in range(10, 25, 2)])
    dp_models: dict[str, dict] = field(default_factory=dict)
    dp_batches: list[int] = field(default_factory=lambda: [4, 16, 64])
    dp_iters: int = 3
    pipe_batch: int = 256
    pipe_micro: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    pipe_iters: int = 3
    cut_batch: int = 64
    cut_iters: int = 3
    straggler: Delay = Delay("exponential", 0.02)
    straggler_steps: int = 20
    straggler_bytes: int = 4096
    ddp: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.repeats < 1 or self.dp_iters < 1 or self.pipe_iters < 1 or self.cut_iters < 1:
            raise ValueError("repeats and iterations must be at least 1")
        bad = [m for m in self.pipe_micro if m < 1 or self.pipe_batch % m]
        if bad:
            raise ValueError(f"micro-batch counts {bad} do not divide the pipeline batch {self.pipe_batch}")
        if not self.sizes or min(self.sizes) < 4 or not self.dp_batches or min(self.dp_batches) < 1:
            raise ValueError("need message sizes of at least 4 bytes and positive batch sizes")


def pipe_model(seed: int) -> nn.Sequential:
    seed_everything(seed)
    return pipeline.as_sequential(build_model(dict(PIPE_MODEL)))


def pipe_cuts(model: nn.Sequential, world: int) -> list[int]:
    """Balanced cuts of the deep MLP: an equal number of hidden layers per stage."""
    hidden = len(PIPE_MODEL["hidden"])
    return [pipeline.cut_before(model, nn.Linear, 1 + hidden * s // world) for s in range(1, world)]


def cut_model(seed: int) -> nn.Sequential:
    seed_everything(seed)
    return pipeline.as_sequential(build_model(dict(CUT_MODEL)))


def cut_points(model: nn.Sequential) -> dict[str, int]:
    """After the first conv block (large feature maps) and after the last (small ones)."""
    return {"after block 1": pipeline.cut_before(model, nn.Conv2d, 2),
            "after block 4": pipeline.cut_before(model, nn.AdaptiveAvgPool2d, 1)}


def pipe_data(seed: int, batch: int, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed + 7)
    return torch.randn(batch, *shape, generator=gen), torch.randint(0, 10, (batch,), generator=gen)


def _pipeline_block(rank: int, world: int, plan: Plan) -> tuple[list[dict], dict]:
    model = pipe_model(plan.seed)
    cuts = pipe_cuts(model, world)
    stage = pipeline.split(model, cuts)[rank]
    x, y = pipe_data(plan.seed, plan.pipe_batch, (PIPE_MODEL["in_features"],))
    rows = []
    for r in range(plan.repeats):
        order = plan.pipe_micro[r % len(plan.pipe_micro):] + plan.pipe_micro[:r % len(plan.pipe_micro)]
        for m in order:
            shapes = pipeline.cut_shapes(pipeline.split(model, cuts), x[: plan.pipe_batch // m])
            for it in range(1 + plan.pipe_iters):
                stage.zero_grad(set_to_none=True)
                dist.barrier()
                t = pipeline.pipeline_step(stage, rank, world, x, y, m, shapes)
                if it:
                    rows.append(dict(repeat=r, micro_batches=m, iteration=it, rank=rank,
                                     busy=t.busy, wall=t.wall))
    # one more step, with m = 4, that keeps its loss and gradients: the exactness check
    exact = pipeline.stage_step(rank, world, model, cuts, x, y, 4)
    return rows, exact


def _cut_block(rank: int, world: int, plan: Plan) -> list[dict]:
    model = cut_model(plan.seed)
    points = cut_points(model)
    x, y = pipe_data(plan.seed, plan.cut_batch, CUT_INPUT)
    stages = {name: pipeline.split(model, [c]) for name, c in points.items()}
    shapes = {name: pipeline.cut_shapes(s, x) for name, s in stages.items()}
    names = list(points)
    rows = []
    for r in range(plan.repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            stage = stages[name][rank]
            for it in range(1 + plan.cut_iters):
                stage.zero_grad(set_to_none=True)
                dist.barrier()
                t = pipeline.pipeline_step(stage, rank, world, x, y, 1, shapes[name])
                if it:
                    rows.append(dict(repeat=r, cut=name, iteration=it, rank=rank, busy=t.busy,
                                     wall=t.wall, bytes_sent=t.sent,
                                     cut_floats=int(np.prod(shapes[name][0][1:]))))
    return rows


def _straggler_block(rank: int, world: int, plan: Plan) -> list[dict]:
    arms = {"no delay": {}, "one straggler": {0: plan.straggler}}
    rows = []
    for r in range(plan.repeats):
        for arm in (list(arms) if r % 2 == 0 else list(arms)[::-1]):
            for row in straggler_steps(rank, arms[arm], plan.straggler_steps, plan.straggler_bytes,
                                       seed=plan.seed + 100 * r):
                rows.append(dict(row, repeat=r, arm=arm, processes=world))
    return rows


def session(rank: int, world: int, plan: Plan) -> dict[str, Any]:
    """Run every block on this rank (each rank calls it); return this rank's rows."""
    out: dict[str, Any] = {}
    out["comm"] = comm.allreduce_times(plan.sizes, plan.repeats) + comm.sendrecv_times(plan.sizes, plan.repeats)
    out["dp"] = dp_step_times(rank, world, plan.dp_models, plan.dp_batches, plan.repeats, plan.dp_iters,
                              plan.seed)
    out["pipe"], out["pipe_exact"] = _pipeline_block(rank, world, plan)
    out["cut"] = _cut_block(rank, world, plan)
    out["straggler"] = _straggler_block(rank, world, plan)
    if plan.ddp:  # last: Lightning sets global state (deterministic algorithms) in these processes
        out["ddp"] = ddp_check.train(world)
    return out


def run_session(plan: Plan, world: int = 2, timeout: float = 600.0) -> list[dict[str, Any]]:
    """One launch of ``world`` ranks running :func:`session`; each rank's rows, in rank order."""
    return launch(session, world, (plan,), timeout=timeout)
