"""Issue 19: nothing silently overwritten, no orphan workers, one run at a time, offline.

The notebooks are tiny (no torch): a run is one kernel start. ``slow_notebook`` sleeps
``pause`` seconds, so a test can kill a sweep while runs are in flight.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from accel.repro.cli import main
from accel.repro.grid import Run
from accel.repro.locks import RunLocked, run_lock
from accel.repro.results import load
from accel.repro.sweep import LOCKED, execute_run, plan, sweep
from accel.repro.workers import children
from conftest import ROOT

PARAMS = '''profile: str = "cpu"   # smoke | cpu | full
seed: int = 0
x: float = 1.0         # [0, 100]
pause: float = 0.0     # seconds to sleep [0, 60]
log: str = ""          # a path: one line per execution'''

BODY = '''import time
from accel.repro.results import Results
if log:
    with open(log, "a") as f:
        f.write(f"x={x} seed={seed}\\n")
time.sleep(pause)
r = Results("slow", profile, seed, {"x": x})
r.metric("loss", x + seed)
r.save()'''


@pytest.fixture
def slow_notebook(tmp_path: Path) -> Path:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [new_code_cell(PARAMS, metadata={"tags": ["parameters"]}), new_code_cell(BODY)]
    path = tmp_path / "slow.ipynb"
    nbformat.write(nb, path)
    return path


def _alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped by its new parent, does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _kernels_under(pid: int) -> list[int]:
    return [c for c in children(pid) if b"ipykernel" in Path(f"/proc/{c}/cmdline").read_bytes()]


# ---------------------------------------------------------------- item 1: the report

@pytest.mark.parametrize("case", ["missing", "file", "empty", "junk only"])
def test_report_of_no_records_is_an_error_that_writes_nothing(tmp_path, capsys, case):
    records = tmp_path / "records"
    if case == "file":
        records.write_text("not a folder")
    elif case in ("empty", "junk only"):
        records.mkdir()
        if case == "junk only":
            (records / "params.json").write_text('{"x": 1}')
            (records / "half.json").write_text('{"complete": tr')
    out = tmp_path / "site" / "report.md"
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert main(["report", str(records), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(records) in err and ("no records folder" in err or "is a file" in err
                                     or "no complete results records" in err)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_report_default_is_not_a_tracked_page(tmp_path, tiny_notebook, monkeypatch, capsys):
    from accel.repro.runner import run_notebook
    run_notebook(tiny_notebook, tmp_path / "records", profile="smoke")
    monkeypatch.chdir(tmp_path)
    assert main(["report", "records"]) == 0
    assert (tmp_path / "_build" / "report.md").exists() and not (tmp_path / "book").exists()


# ---------------------------------------------------------------- item 2: kills and locks

def test_sigkill_of_a_sweep_leaves_no_worker_or_kernel_and_resume_completes_once(slow_notebook, tmp_path):
    out, log = tmp_path / "runs", tmp_path / "log.txt"
    args = [sys.executable, "-m", "accel.repro.cli", "sweep", str(slow_notebook), "--profile", "smoke",
            "--workers", "2", "--out", str(out), "--grid", "x=1,2,3,4", "--grid", "pause=3",
            "--grid", f"log={log}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    parent = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(_kernels_under(parent.pid)) < 2:  # both workers are inside a run
            assert parent.poll() is None and time.monotonic() < deadline, "the sweep never started two runs"
            time.sleep(0.2)
        tree = children(parent.pid)
        workers = [p for p in tree if p not in _kernels_under(parent.pid)]
        assert len(tree) >= 4 and workers  # 2 workers (+ the pool's helper), 2 kernels
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in tree) and time.monotonic() < deadline:
        time.sleep(0.2)
    orphans = [p for p in tree if _alive(p)]
    assert orphans == [], f"left running after SIGKILL of the sweep: {orphans}"
    finished_before = {p: p.stat().st_mtime_ns for p in out.glob("*/slow.json")}
    assert len(finished_before) < 4  # killed mid-sweep: not everything finished

    resumed = sweep(slow_notebook, {"x": [1, 2, 3, 4], "pause": [3], "log": [str(log)]}, out,
                    profile="smoke", workers=2, figure=False)
    assert resumed.exit_status == 0 and resumed.skipped == len(finished_before)
    for run in resumed.runs:  # exactly one complete record per run, nothing partial left
        assert run.is_complete("slow") and len(list(run.dir.glob("*.json"))) == 2  # record + params
        assert not list(run.dir.glob(".*partial*"))
    assert {p: p.stat().st_mtime_ns for p in finished_before} == finished_before  # not redone
    assert sorted(resumed.table[resumed.table.metric == "loss"].value) == [1.0, 2.0, 3.0, 4.0]
    lines = log.read_text().splitlines()
    assert {f"x={x}.0 seed=0" for x in (1, 2, 3, 4)} == set(lines)
    assert len(lines) - len(set(lines)) <= 2  # only the runs killed in flight ran twice


def test_an_orphaned_kernel_exits_by_itself(tmp_path):
    """ipykernel polls for its parent (JPY_PARENT_PID): a kernel whose parent is killed exits."""
    script = ("import sys, time\nfrom jupyter_client import KernelManager\n"
              "km = KernelManager(kernel_name='python3'); km.start_kernel()\n"
              "print(km.provisioner.process.pid, flush=True); time.sleep(600)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    kernel = int(parent.stdout.readline())
    time.sleep(1.0)
    assert _alive(kernel)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while _alive(kernel) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(kernel)


def test_a_run_locked_by_another_process_is_not_executed(slow_notebook, tmp_path, capsys):
    out = tmp_path / "runs"
    runs = plan(slow_notebook, {"x": [1.0, 2.0]}, out, "smoke")
    locked = runs[0]
    with run_lock(locked.dir):
        with pytest.raises(RunLocked, match=f"run {locked.id} is being executed by another process "
                                            f"\\(pid {os.getpid()}\\)"):
            with run_lock(locked.dir):
                pass
        outcome = execute_run(str(slow_notebook), str(locked.dir), locked.params)
        assert outcome["status"] == LOCKED and str(os.getpid()) in outcome["error"]
        code = main(["sweep", str(slow_notebook), "--profile", "smoke", "--out", str(out),
                     "--grid", "x=1.0,2.0"])
        printed = capsys.readouterr().out
    assert code == 1 and "1 busy in another process" in printed and "being executed by another process" in printed
    assert not locked.is_complete("slow") and runs[1].is_complete("slow")
    assert main(["sweep", str(slow_notebook), "--profile", "smoke", "--out", str(out),
                 "--grid", "x=1.0,2.0"]) == 0  # the lock is gone with its holder: the resume runs it
    assert locked.is_complete("slow")


# ---------------------------------------------------------------- item 3: parameters

def test_profile_table_types_and_bounds_the_none_parameters():
    from accel.repro.parameters import parse_parameters, profile_table, with_profiles
    from accel.repro.runner import check_parameters
    source = 'profile = "cpu"\nseed = 0\nepochs = None  # epochs\nlrs = None\nwarmup = None\nname = None\n'
    table = profile_table(["%matplotlib inline", 'import x\ncfg = profiles.resolve(profile, {\n'
                           '  "smoke": dict(epochs=2, lrs=[0.1, 1], warmup=0, name="a", f=len("x")),\n'
                           '  "cpu": dict(epochs=6, lrs=[0.1], warmup=2, name="b", f=1),\n'
                           '  "full": {"epochs": 20, "lrs": [0.3], "warmup": 5, "name": "c", "f": 1}}, {})'])
    assert table["epochs"] == {"smoke": 2, "cpu": 6, "full": 20} and table["f"] == {"cpu": 1, "full": 1}
    params = with_profiles(parse_parameters(source), table)
    assert params["epochs"].annotation == "int | None" and params["epochs"].inferred
    assert params["lrs"].annotation == "list[float] | None" and params["lrs"].low == 0.0
    assert params["warmup"].annotation == "int | None" and params["warmup"].low is None  # 0 is valid
    assert params["name"].annotation == "str | None"
    for bad, message in (({"epochs": -3}, r"'epochs' of nb must be int \| None in \(0, inf\) "
                                          r"\(from the profile table\), got -3"),
                         ({"epochs": 2.5}, "expects int"), ({"lrs": [0.1, 0]}, "'lrs'"),
                         ({"warmup": "x"}, "expects int"), ({"seed": -1}, "'seed'"), ({"name": 3}, "str")):
        with pytest.raises(ValueError, match=message):
            check_parameters("nb", bad, params)
    assert check_parameters("nb", {"epochs": 3, "warmup": 0, "lrs": [1, 2.5]}, params)


def test_every_chapter_parameter_has_a_type_and_epochs_minus_3_is_refused():
    from accel.repro.runner import check_parameters, notebook_parameters
    for nb in sorted((ROOT / "notebooks").glob("*.md")):
        untyped = [n for n, p in notebook_parameters(nb).items() if p.type_expr() is None]
        assert not untyped, f"{nb.name}: parameters without a type: {untyped}"
    with pytest.raises(ValueError, match="'epochs' of 01_initialization.md"):
        check_parameters(ROOT / "notebooks" / "01_initialization.md", {"epochs": -3})


def test_a_bound_may_name_another_parameter(tmp_path):
    from accel.repro.parameters import parse_parameters, with_profiles, profile_table
    from accel.repro.runner import check_parameters
    source = ('profile = "cpu"\ntrain_size: int | None = None  # [1, 60000]\n'
              'batch: int | None = None  # batch size [1, train_size]\n')
    table = profile_table(['cfg = profiles.resolve(profile, {"smoke": dict(train_size=100, batch=10),'
                           '"cpu": dict(train_size=1000, batch=32), "full": dict(train_size=5000, batch=64)},'
                           ' dict(train_size=train_size, batch=batch))'])
    params = with_profiles(parse_parameters(source), table)
    assert params["batch"].profile_values == {"smoke": 10, "cpu": 32, "full": 64}
    with pytest.raises(ValueError, match=r"'batch' .* in \[1, train_size = 100\], got 500"):
        check_parameters("nb", {"profile": "smoke", "batch": 500}, params)
    with pytest.raises(ValueError, match=r"train_size = 200"):
        check_parameters("nb", {"profile": "smoke", "batch": 500, "train_size": 200}, params)
    assert check_parameters("nb", {"profile": "cpu", "batch": 500}, params)


def test_cli_refuses_impossible_values_before_a_kernel_starts(slow_notebook, tmp_path, capsys):
    out = tmp_path / "o"
    for name, value, message in (("x", "-3", "in [0, 100]"), ("pause", "1e9", "in [0, 60]"),
                                 ("seed", "True", "expects int"), ("x", "nan", "expects float")):
        assert main(["run", str(slow_notebook), "-p", name, value, "--out", str(out)]) == 2
        assert message in capsys.readouterr().err
    assert not out.exists()


# ---------------------------------------------------------------- offline

def test_a_chapter_runs_offline_in_a_network_namespace(tiny_notebook, tmp_path):
    """``unshare -n``: a network namespace whose only interface, loopback, is down.

    Skipped where unprivileged. The kernel talks to papermill over Unix sockets
    (``ACCEL_KERNEL_TRANSPORT=ipc``), so not even 127.0.0.1 is needed. The tiny notebook
    stands in for a chapter to keep the test fast; ``ACCEL_OFFLINE_CHAPTER=notebooks/
    07_stability.md`` runs a real chapter under smoke the same way.
    """
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-n", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare -n needs privileges here")
    chapter = os.environ.get("ACCEL_OFFLINE_CHAPTER")
    notebook = ROOT / chapter if chapter else tiny_notebook
    probe = ("import socket\ntry:\n    socket.create_connection(('1.1.1.1', 80), 3)\nexcept OSError:\n"
             "    pass\nelse:\n    raise SystemExit('the network is reachable')")
    script = (f"{sys.executable} -c \"{probe}\" && {sys.executable} -m accel.repro.cli run {notebook} "
              f"--profile smoke --no-progress --out {tmp_path / 'out'}")
    done = subprocess.run([unshare, "-n", "sh", "-c", script], capture_output=True, text=True, timeout=600,
                          cwd=ROOT, env={**os.environ, "ACCEL_KERNEL_TRANSPORT": "ipc"})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    record = load(tmp_path / "out" / f"{notebook.stem}.json")
    assert record["profile"] == "smoke" and record["metrics"]
