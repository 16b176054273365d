"""Data parallelism: DDP over 2 CPU processes (gloo) equals one process on the global batch."""
import os
import subprocess
import sys

import torch

from conftest import ROOT

WORKER = ROOT / "tests" / "scripts" / "ddp_worker.py"


def _run(mode: str, out) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(WORKER), mode, str(out)], env=env, cwd=out,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return torch.load(out / f"{mode}.pt")


def test_ddp_step_and_training_match_single_process_at_the_same_global_batch(tmp_path):
    single, ddp = _run("single", tmp_path), _run("ddp", tmp_path)
    assert single["world_size"] == 1 and ddp["world_size"] == 2
    # One step: DDP's all-reduced gradient is the gradient of the mean over the global batch.
    assert single["grads"].keys() == ddp["grads"].keys()
    for name, g in single["grads"].items():
        torch.testing.assert_close(ddp["grads"][name], g, rtol=1e-5, atol=1e-6, msg=name)
    # Whole run from the same seed: the same weights, up to float summation order.
    for name, w in single["weights"].items():
        torch.testing.assert_close(ddp["weights"][name], w, rtol=1e-4, atol=1e-5, msg=name)
    # And the comparison is not vacuous: training moved the weights.
    torch.testing.assert_close(ddp["initial"], single["initial"])
    moved = max((ddp["weights"][n] - ddp["initial"][n]).abs().max() for n in ddp["weights"])
    assert moved > 1e-3
