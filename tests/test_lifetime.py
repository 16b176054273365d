"""A race's worker processes end when the race's process is killed (Linux: PR_SET_PDEATHSIG)."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from accel.lifetime import die_with_parent

MIDDLE = textwrap.dedent("""
    import os, time
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing as mp
    from accel.experiments.race.runner import _init

    if __name__ == "__main__":
        pool = ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"), initializer=_init,
                                   initargs=(1, os.getpid()))
        pool.submit(time.sleep, 120).running()
        while not pool._processes:
            time.sleep(0.05)
        time.sleep(2.0)  # the worker has run its initializer
        print(*pool._processes, flush=True)
        time.sleep(120)
""")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has ended; only its reaping is left


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_race_worker_dies_when_its_parent_is_killed(tmp_path):
    script = tmp_path / "middle.py"
    script.write_text(MIDDLE)
    middle = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[1])
    try:
        worker = int(middle.stdout.readline().split()[0])
        assert _alive(worker)
        middle.send_signal(signal.SIGKILL)  # no cleanup at all: what a killed kernel gets
        middle.wait(timeout=30)
        deadline = time.monotonic() + 20
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(worker), "the worker outlived its killed parent"
    finally:
        middle.kill()


def test_a_child_whose_parent_is_already_gone_exits(monkeypatch):
    exits = []
    monkeypatch.setattr(os, "_exit", lambda code: exits.append(code))
    die_with_parent(os.getppid() + 1_000_000, sig=0)  # not our parent (sig 0: arms nothing here)
    assert exits == [1]
