"""Launching gloo ranks on localhost: results in rank order, errors named, nothing left running."""
import os
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from accel.experiments.parallel.launch import _first_failure, free_port, launch


def _children() -> set[int]:
    pids = set()
    for task in Path(f"/proc/{os.getpid()}/task").glob("*"):
        try:
            pids |= {int(c) for c in (task / "children").read_text().split()}
        except (OSError, ValueError):
            continue
    return {p for p in pids if "resource_tracker" not in _cmdline(p)}  # multiprocessing's own helper


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def sum_of_ranks(rank: int, world: int, scale: float) -> dict:
    t = torch.tensor([float(rank)])
    dist.all_reduce(t)
    return {"rank": rank, "world": world, "sum": float(t) * scale, "pid": os.getpid()}


def fail_on_rank_1(rank: int, world: int) -> None:
    if rank == 1:
        print("about to fail")
        raise ValueError("rank 1 refuses")
    dist.barrier()  # rank 0 would wait forever for rank 1 without the launcher's cleanup


def sleep_forever(rank: int, world: int) -> None:
    time.sleep(600)


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_launch_collects_every_rank_in_order_and_leaves_no_process():
    before = _children()
    out = launch(sum_of_ranks, 3, (2.0,), timeout=120)
    assert [o["rank"] for o in out] == [0, 1, 2] and {o["world"] for o in out} == {3}
    assert {o["sum"] for o in out} == {6.0}  # 2 × (0 + 1 + 2): a real all-reduce happened
    assert len({o["pid"] for o in out}) == 3 and os.getpid() not in {o["pid"] for o in out}
    assert _children() <= before


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_a_failing_rank_is_named_with_its_log_and_the_others_are_stopped():
    before = _children()
    with pytest.raises(RuntimeError, match="rank 1 of 2 failed first") as err:
        launch(fail_on_rank_1, 2, timeout=120)  # rank 0 fails too, in its barrier: a consequence
    assert "rank 1 refuses" in str(err.value) and "about to fail" in str(err.value)  # the rank's log
    assert _children() <= before


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_a_launch_past_its_deadline_is_killed():
    before = _children()
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="within 3 s"):
        launch(sleep_forever, 2, timeout=3, init=False)
    assert time.monotonic() - start < 60
    assert _children() <= before


def test_bad_arguments_are_refused_before_any_process_starts():
    with pytest.raises(ValueError, match="world_size"):
        launch(sum_of_ranks, 0)
    with pytest.raises(ValueError, match="timeout"):
        launch(sum_of_ranks, 2, timeout=0)
    with pytest.raises(ValueError, match="threads"):
        launch(sum_of_ranks, 2, threads=0)
    assert 0 < free_port() < 65536


def test_the_first_failure_is_the_earliest_time_stamp_whatever_the_order_of_the_files(tmp_path):
    (tmp_path / "rank0.failed").write_text("2000\nTraceback: connection closed by peer")
    (tmp_path / "rank1.failed").write_text("1000\nTraceback: ValueError: rank 1 refuses")
    (tmp_path / "rank2.failed").write_text("3000\nTraceback: connection closed by peer")
    rank, trace, later = _first_failure(tmp_path, [], fallback=0)
    assert (rank, later) == (1, [0, 2]) and "rank 1 refuses" in trace
    assert _first_failure(tmp_path / "none", [], fallback=0) == (0, "", [])  # no stamps: what the OS said
