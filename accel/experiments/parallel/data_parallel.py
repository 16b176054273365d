"""Data parallelism's step, split into compute and gradient all-reduce.

Each process holds a replica of the model and computes the gradient of its own
per-process batch; the replicas then average their gradients (one all-reduce of the
flattened gradients, the way DDP's buckets send them) and take the same step. The
all-reduce costs the same whatever the batch, so its share of the step falls as the
per-process batch grows, and it is larger for models with many parameters per unit of
compute: fully connected layers, against convolutions that reuse each weight at every
position (Krizhevsky 2014).

Timed without overlap: DDP starts all-reducing early buckets while the backward pass
runs, so the share measured here is what overlap would have to hide.
"""
from __future__ import annotations

import time
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from ...models import build_model
from ...seeding import seed_everything

IN_FEATURES = 1024  # a 32 × 32 single-channel image, or 1,024 features for an MLP
MODELS: dict[str, dict[str, Any]] = {
    "MLP 0.2M": {"name": "mlp", "in_features": IN_FEATURES, "hidden": [192], "out_features": 10},
    "CNN 0.26M": {"name": "cnn2d", "in_channels": 1, "channels": [32, 64, 128], "num_classes": 10},
    "MLP 2.1M": {"name": "mlp", "in_features": IN_FEATURES, "hidden": [1024, 1024],
                 "out_features": 10},
}


def parameter_count(spec: Mapping[str, Any]) -> int:
    return sum(p.numel() for p in build_model(dict(spec)).parameters())


def _order(configs: list, repeat: int) -> list:
    k = repeat % len(configs)
    order = configs[k:] + configs[:k]
    return order[::-1] if repeat % 2 else order


def dp_step_times(rank: int, world: int, models: Mapping[str, Mapping[str, Any]], batches: Sequence[int],
                  repeats: int, iters: int, seed: int, warmup: int = 1) -> list[dict]:
    """Per (repeat, model, per-process batch): this rank's median seconds of compute (forward,
    backward, update), of waiting for the other replicas (a barrier) and of the all-reduce.

    Every rank calls it with the same arguments. Configurations are interleaved: each
    repeat visits all of them, in a rotated order.
    """
    nets = {}
    for name, spec in models.items():
        seed_everything(seed)  # the same initial replica on every rank
        net = build_model(dict(spec))
        nets[name] = (net, torch.optim.SGD(net.parameters(), lr=0.01))
    gen = torch.Generator().manual_seed(seed + 1000 * rank)  # each rank its own shard
    data = {b: (torch.randn(b, IN_FEATURES, generator=gen), torch.randint(0, 10, (b,), generator=gen))
            for b in batches}
    configs = [(name, b) for name in models for b in batches]
    rows = []
    for r in range(repeats):
        for name, b in _order(configs, r):
            net, opt = nets[name]
            params = [p for p in net.parameters()]
            x, y = data[b]
            compute, wait, comm = [], [], []
            for it in range(warmup + iters):
                dist.barrier()
                t0 = time.perf_counter()
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(net(x), y).backward()
                t1 = time.perf_counter()
                dist.barrier()  # waiting for the slower replica is not the all-reduce's cost
                t2 = time.perf_counter()
                flat = torch.cat([p.grad.reshape(-1) for p in params])
                dist.all_reduce(flat)
                flat /= world
                offset = 0
                for p in params:
                    p.grad.copy_(flat[offset:offset + p.numel()].view_as(p))
                    offset += p.numel()
                t3 = time.perf_counter()
                opt.step()
                t4 = time.perf_counter()
                if it >= warmup:
                    compute.append((t1 - t0) + (t4 - t3))
                    wait.append(t2 - t1)
                    comm.append(t3 - t2)
            rows.append(dict(repeat=r, model=name, batch=b, rank=rank, compute=float(np.median(compute)),
                             wait=float(np.median(wait)), allreduce=float(np.median(comm)),
                             grad_bytes=int(flat.numel() * 4), parameters=int(flat.numel())))
    return rows
