"""The α–β cost model at scales this machine does not have: the sources' 4-GPU server and a modern one.

Every number here is an assumption with its source, not a measurement; the chapter
measures the model's ingredients on this machine and uses this module only to say what
they imply elsewhere. Step time of one training step of AlexNet (Krizhevsky et al. 2012:
60,965,224 parameters, of which 2.3 M in the convolutions; 724 M multiply-adds per
224×224 image forward, 92 % of them in the convolutions; batch 128), with compute at a
sustained fraction of the device's peak and communication by :mod:`.cost_model`:

- model parallelism as in Krizhevsky et al.'s two towers: every layer's filters split
  over the devices, which exchange the activations of the layers that connect across
  towers (the input of conv3 and of the three fully connected layers) forward, and
  their gradients backward, as all-gathers;
- data parallelism: a ring all-reduce of every gradient;
- hybrid (Yadan et al. 2014's 4 GPUs): 2 data-parallel groups of 2-way model parallelism,
  each device all-reducing the half of the parameters it holds with its twin.

No overlap of communication with compute, no contention between concurrent transfers on
a shared bus, and a fixed global batch: the table of the source is *time to the final
error*, which also folds in how the batch affects convergence.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .cost_model import AlphaBeta, ring_allreduce

DAY = 86400.0


@dataclass(frozen=True)
class Workload:
    name: str
    batch: int
    flops_per_sample: float       # training (forward + backward ≈ 3 × forward, 2 FLOP per multiply-add)
    grad_bytes: float             # fp32 gradients of every parameter
    cross_floats: tuple[int, ...]  # per sample, activations crossing between towers (per connected layer)
    source: str


ALEXNET = Workload(
    "AlexNet (ImageNet, batch 128)", 128, 6 * 724e6, 4 * 60_965_224, (13 * 13 * 256, 9216, 4096, 4096),
    "Krizhevsky et al. 2012 (architecture, two-tower connections, batch 128)")


def implied_utilization() -> float:
    """Sustained fraction of peak implied by Krizhevsky et al. 2012: about 90 epochs of 1.2 M
    images in 5–6 days (5.5 taken) on two GTX 580s (1.581 TFLOPS fp32 peak each)."""
    work = 90 * 1.2e6 * ALEXNET.flops_per_sample
    return work / (5.5 * DAY * 2 * 1.581e12)


@dataclass(frozen=True)
class Hardware:
    name: str
    peak_flops: float
    link: AlphaBeta
    source: str


def hardware() -> dict[str, Hardware]:
    """The two settings of the extrapolation, with where each number comes from."""
    return {
        "2013: GTX TITAN, PCIe 3.0": Hardware(
            "4× NVIDIA GTX TITAN on PCIe 3.0 ×16", 4.5e12, AlphaBeta(10e-6, 1 / 15.75e9),
            "peak fp32 4.5 TFLOPS (NVIDIA GTX TITAN specification: 2,688 cores at 837 MHz); "
            "15.75 GB/s per direction (PCIe 3.0 ×16: 8 GT/s per lane, 128b/130b encoding); "
            "latency 10 µs assumed"),
        "2023: H100 SXM, NVLink 4": Hardware(
            "4× NVIDIA H100 SXM on NVLink 4", 989e12, AlphaBeta(5e-6, 1 / 450e9),
            "peak dense BF16 989 TFLOPS and NVLink 900 GB/s per GPU, both directions together "
            "(NVIDIA H100 datasheet); 450 GB/s per direction; latency 5 µs assumed"),
    }


# the sources' table: Yadan et al. 2014, ImageNet on up to 4 NVIDIA TITAN GPUs in one server
CONFIGS = [  # name, data-parallel ways, model-parallel ways, days in the source
    ("1 GPU", 1, 1, 10.5),
    ("2 GPUs, model parallel", 1, 2, 6.6),
    ("2 GPUs, data parallel", 2, 1, 7.0),
    ("4 GPUs, data parallel", 4, 1, 7.2),
    ("4 GPUs, model + data parallel", 2, 2, 4.8),
]


def all_gather(p: int, nbytes: float, link: AlphaBeta) -> float:
    """Ring all-gather (or reduce-scatter) of ``nbytes`` in total over ``p`` devices."""
    return (p - 1) * link.alpha + (p - 1) / p * nbytes * link.beta if p > 1 else 0.0


def step_time(dp: int, mp: int, hw: Hardware, wl: Workload = ALEXNET, utilization: float | None = None) -> dict:
    """Seconds per step of ``dp``-way data × ``mp``-way model parallelism, split into parts."""
    if dp < 1 or mp < 1:
        raise ValueError(f"need dp >= 1 and mp >= 1, got dp={dp}, mp={mp}")
    u = implied_utilization() if utilization is None else utilization
    compute = wl.batch * wl.flops_per_sample / (hw.peak_flops * u) / (dp * mp)
    group_batch = wl.batch / dp
    exchange = sum(2 * all_gather(mp, group_batch * f * 4, hw.link) for f in wl.cross_floats)
    allreduce = ring_allreduce(dp, wl.grad_bytes / mp, hw.link)
    return dict(compute=compute, activations=exchange, allreduce=allreduce,
                step=compute + exchange + allreduce)


def predictions(utilization: float | None = None) -> pd.DataFrame:
    """The sources' table next to the model's speed-ups (per step) on both hardware settings."""
    out = []
    for name, dp, mp, days in CONFIGS:
        row = dict(configuration=name, devices=dp * mp, days=days, speedup=CONFIGS[0][3] / days)
        for label, hw in hardware().items():
            t, t1 = step_time(dp, mp, hw, utilization=utilization), step_time(1, 1, hw, utilization=utilization)
            row[f"{label}: step (ms)"] = 1e3 * t["step"]
            row[f"{label}: speed-up"] = t1["step"] / t["step"]
            row[f"{label}: communication share"] = 1 - t["compute"] / t["step"]
        out.append(row)
    return pd.DataFrame(out)


def breakeven_bandwidth(dp: int, speedup: float, hw: Hardware, wl: Workload = ALEXNET,
                        utilization: float | None = None) -> float:
    """The all-reduce bandwidth (bytes/s) at which ``dp``-way data parallelism gives only
    ``speedup`` over one device (same compute and latency as ``hw``)."""
    if not 1 <= speedup < dp:
        raise ValueError(f"need 1 <= speedup < dp, got speedup={speedup}, dp={dp}")
    one = step_time(1, 1, hw, wl, utilization)["compute"]
    slack = one / speedup - one / dp - 2 * (dp - 1) * hw.link.alpha  # time left for the bytes
    return 2 * (dp - 1) / dp * wl.grad_bytes / slack
