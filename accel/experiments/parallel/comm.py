"""Communication timings: all-reduce and point-to-point send/recv over the process group.

What the α–β cost model (:mod:`.cost_model`) is fitted to. Both are timed the way MPI
benchmarks time them: a barrier, then ``iters`` operations back to back, the mean time per
operation; send/recv as a ping-pong between ranks 0 and 1 (half the round trip is the
one-way time). Message sizes are visited in a different order in every repeat, so a
slow spell of a shared machine spreads over all sizes instead of one.
"""
from __future__ import annotations

import time
from typing import Sequence

import torch
import torch.distributed as dist


def _order(n: int, repeat: int) -> list[int]:
    """Index order for repeat ``repeat``: rotated by the repeat and reversed every other time."""
    order = [(i + repeat) % n for i in range(n)]
    return order[::-1] if repeat % 2 else order


def iterations(nbytes: int, budget_bytes: float = 64e6, most: int = 50, least: int = 3) -> int:
    """Operations per timing: many for small messages (latency), few for large ones."""
    return int(max(least, min(most, budget_bytes // max(nbytes, 1))))


def allreduce_times(sizes: Sequence[int], repeats: int, group=None) -> list[dict]:
    """Mean seconds per ``all_reduce`` (sum, float32) of each message size in bytes; every rank calls it."""
    rank = dist.get_rank()
    world = dist.get_world_size(group)
    rows = []
    for r in range(repeats):
        for i in _order(len(sizes), r):
            n = int(sizes[i])
            buf = torch.ones(max(1, n // 4))
            k = iterations(n)
            dist.all_reduce(buf, group=group)  # warm-up: connections and buffers
            dist.barrier(group=group)
            t0 = time.perf_counter()
            for _ in range(k):
                dist.all_reduce(buf, group=group)
            dt = (time.perf_counter() - t0) / k
            rows.append(dict(op="all-reduce", bytes=buf.numel() * 4, repeat=r, seconds=dt,
                             processes=world, rank=rank))
    return rows


def sendrecv_times(sizes: Sequence[int], repeats: int) -> list[dict]:
    """One-way seconds of a ``send``/``recv`` between ranks 0 and 1 (half a ping-pong); ranks ≥ 2 idle."""
    rank = dist.get_rank()
    rows = []
    for r in range(repeats):
        for i in _order(len(sizes), r):
            n = int(sizes[i])
            buf = torch.ones(max(1, n // 4))
            k = iterations(n)
            dist.barrier()
            if rank > 1:
                continue
            peer = 1 - rank
            for j in range(k + 1):  # the first round trip is a warm-up
                if j == 1:
                    t0 = time.perf_counter()
                if rank == 0:
                    dist.send(buf, peer)
                    dist.recv(buf, peer)
                else:
                    dist.recv(buf, peer)
                    dist.send(buf, peer)
            dt = (time.perf_counter() - t0) / k / 2
            rows.append(dict(op="send/recv", bytes=buf.numel() * 4, repeat=r, seconds=dt,
                             processes=2, rank=rank))
    return rows
