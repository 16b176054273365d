"""Benchmark the cluster path: the same 8-run smoke sweep on local worker processes and on a
2-worker Dask ``LocalCluster``, interleaved, printed as a ratio (the cluster's overhead per run).

    .venv/bin/python benchmarks/cluster.py [--runs 8] [--repeats 2]

Needs the optional extras (``pip install -c constraints.txt -e '.[cluster]'``). The
notebook is tests/assets/sweep_tiny.ipynb, whose runs do almost nothing, so the figures
are the engines' own costs (task submission, the shared-folder probe, result transfer)
on top of a kernel start per run. Wall times on a shared machine are noisy: the load
average is printed with them.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from accel.repro.sweep import sweep

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "tests" / "assets" / "sweep_tiny.ipynb"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    grid = {"seed": list(range(args.runs))}
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                           worker_dashboard_address=None, silence_logs=40)
    client = Client(cluster)
    times: dict[str, list[float]] = {"local": [], "dask": []}
    try:
        for _ in range(args.repeats):
            for engine in ("local", "dask"):  # interleaved: both see the same machine load
                with tempfile.TemporaryDirectory() as out:
                    start = time.perf_counter()
                    res = sweep(NOTEBOOK, grid, Path(out), profile="smoke", workers=2, figure=False,
                                progress=False, cluster=client if engine == "dask" else None)
                    times[engine].append(time.perf_counter() - start)
                    assert res.exit_status == 0 and res.count("done") == args.runs
    finally:
        client.close()
        cluster.close()
    local, dask = statistics.median(times["local"]), statistics.median(times["dask"])
    print(f"{args.runs}-run smoke sweep, 2 workers (median of {args.repeats}; load {os.getloadavg()[0]:.1f}):")
    print(f"  local processes {local:.1f} s, Dask LocalCluster {dask:.1f} s")
    print(f"  Dask / local {dask / local:.2f}x; cluster overhead per run {(dask - local) / args.runs * 1000:+.0f} ms")


if __name__ == "__main__":
    main()
