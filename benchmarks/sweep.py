"""Benchmark `accel sweep`: 8 smoke runs with 1 worker, then with 2, and the kernel start cost.

    .venv/bin/python benchmarks/sweep.py [--notebook NB] [--runs 8] [--grid-name seed]

By default the notebook is tests/assets/sweep_tiny.ipynb, whose runs do almost nothing:
the timings are then the sweep's own overhead (worker start, kernel start, papermill),
the part parallel workers can hide. Pass a chapter (``--notebook
notebooks/01_initialization.ipynb``) to time real work. Wall times on a shared
machine are noisy: the load average is printed with them.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

from accel.repro.sweep import sweep

ROOT = Path(__file__).resolve().parents[1]


def kernel_start_seconds(repeats: int = 3) -> list[float]:
    """Start a python3 kernel and wait until it answers, ``repeats`` times."""
    from jupyter_client.manager import start_new_kernel

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        km, kc = start_new_kernel(kernel_name="python3")
        times.append(time.perf_counter() - start)
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return times


def children_cpu() -> float:
    """User + system CPU seconds of finished child processes (workers, and their kernels)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_sweep(notebook: Path, grid: dict, out: Path, workers: int) -> tuple[float, float, list[float]]:
    start, cpu = time.perf_counter(), children_cpu()
    res = sweep(notebook, grid, out, profile="smoke", workers=workers, force=True, progress=False,
                figure=False)
    wall = time.perf_counter() - start
    if res.exit_status:
        raise SystemExit(f"{res.exit_status} runs failed; see {out / 'sweep.json'}")
    return wall, children_cpu() - cpu, [s["seconds"] for s in res.status.values()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notebook", default=str(ROOT / "tests" / "assets" / "sweep_tiny.ipynb"))
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--grid-name", default="seed", help="the parameter given values 0..runs-1")
    args = parser.parse_args()
    notebook = Path(args.notebook)
    grid = {args.grid_name: list(range(args.runs))}
    print(f"notebook {notebook.name}, {args.runs} smoke runs, {os.cpu_count()} CPUs, "
          f"load average before: {os.getloadavg()[0]:.1f}")
    kernel = kernel_start_seconds()
    print(f"kernel start (start + first reply): mean {statistics.mean(kernel):.2f} s "
          f"({', '.join(f'{t:.2f}' for t in kernel)})")
    with tempfile.TemporaryDirectory() as tmp:
        walls = {}
        for workers in (1, 2):
            wall, cpu, per_run = timed_sweep(notebook, grid, Path(tmp) / f"w{workers}", workers)
            walls[workers] = wall
            print(f"{workers} worker(s): {wall:.1f} s wall, {cpu:.1f} s CPU for {args.runs} runs; per run "
                  f"{statistics.mean(per_run):.2f} s mean (kernel start + papermill + the notebook)")
    print(f"speed-up 2 workers / 1 worker: {walls[1] / walls[2]:.2f}x  "
          f"(load average after: {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
