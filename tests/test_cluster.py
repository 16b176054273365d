"""Issue 26: sweeps on a Dask cluster and through submitit (SLURM), with the local guarantees.

Needs the optional extras (``pip install -e .[cluster]``); skipped without them. The
Dask tests use a 2-worker ``LocalCluster`` of processes; the SLURM code path runs on
submitit's local executor (``ACCEL_SUBMITIT_CLUSTER=local``), which needs no SLURM.
"""
import os
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from accel.repro.cli import main
from accel.repro.cluster import check_shared_folder, check_slurm_options, parse_dask_address
from accel.repro.sweep import sweep
from accel.repro.workers import children
from test_reliability import PARAMS, BODY  # the slow notebook: sleeps `pause` seconds

ASSET = Path(__file__).parent / "assets" / "sweep_tiny.ipynb"
GRID = {"x": [0.5, 2.0], "seed": [0, 1]}


def _table(result) -> pd.DataFrame:
    return result.table.sort_values(["run", "metric"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, worker_dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def local_table(tmp_path_factory):
    """The reference: the grid swept by local worker processes."""
    out = tmp_path_factory.mktemp("local")
    return _table(sweep(ASSET, GRID, out, profile="smoke", workers=2, figure=False))


def test_addresses_and_slurm_options_are_checked_before_anything():
    assert parse_dask_address("dask://node1:8786") == "tcp://node1:8786"
    for bad in ("node1:8786", "dask://node1", "dask://:8786", "tcp://node1:8786", "dask://n:99999", ""):
        with pytest.raises(ValueError, match="dask://HOST:PORT"):
            parse_dask_address(bad)
    assert check_slurm_options("gpu", 2, 30) == {"slurm_partition": "gpu", "gpus_per_node": 2, "timeout_min": 30}
    for args, message in ((("", None, None), "partition"), (("a b", None, None), "partition"),
                          (("gpu", -1, None), "--slurm-gpus"), (("gpu", 1, 0), "--slurm-time")):
        with pytest.raises(ValueError, match=message):
            check_slurm_options(*args)


def test_cli_refuses_bad_cluster_options_writing_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    base = ["sweep", str(ASSET), "--profile", "smoke", "--grid", "x=1", "--out", str(out)]
    for extra, message in ((["--cluster", "localhost:8786"], "dask://HOST:PORT"),
                           (["--slurm", "a b"], "partition"), (["--slurm", "p", "--slurm-time", "0"], "--slurm-time"),
                           (["--cluster", "dask://h:1", "--slurm", "p"], "not both"),
                           (["--slurm-gpus", "1"], "partition")):
        assert main([*base, *extra]) == 2
        assert message in capsys.readouterr().err
    assert not out.exists()


def test_the_shared_folder_check_names_what_is_wrong(tmp_path):
    class Fake:
        def __init__(self, answers):
            self.answers = answers

        def run(self, fn, *args):
            return self.answers

    with pytest.raises(ValueError, match="tcp://w1 cannot write there \\(Permission denied\\)"):
        check_shared_folder(Fake({"tcp://w1": "error: Permission denied"}), tmp_path)
    with pytest.raises(ValueError, match="which this machine cannot see"):
        check_shared_folder(Fake({"tcp://w2": str(tmp_path / "elsewhere" / ".probe")}), tmp_path)
    with pytest.raises(ValueError, match="no workers"):
        check_shared_folder(Fake({}), tmp_path)


def test_dask_sweep_matches_local_records_failures_and_resumes(client, local_table, tmp_path):
    on_dask = sweep(ASSET, GRID, tmp_path / "dask", profile="smoke", cluster=client, figure=False)
    assert on_dask.exit_status == 0 and on_dask.count("done") == 4
    assert all(run.is_complete("sweep_tiny") for run in on_dask.runs)
    pd.testing.assert_frame_equal(_table(on_dask), local_table)
    # a wider grid: the finished runs are skipped, the failing one (x = -1) is recorded
    wider = sweep(ASSET, {"x": [0.5, 2.0, -1.0], "seed": [0]}, tmp_path / "dask", profile="smoke",
                  cluster=client, figure=False)
    assert wider.skipped == 2 and wider.count("failed") == 1 and wider.exit_status == 1
    failed = next(r for r in wider.runs if r.params["x"] == -1.0)
    assert (failed.dir / "failed.json").exists() and not failed.is_complete("sweep_tiny")


def test_a_dask_worker_killed_mid_run_is_replaced_and_its_run_retried_once(client, tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [new_code_cell(PARAMS, metadata={"tags": ["parameters"]}), new_code_cell(BODY)]
    notebook = tmp_path / "slow.ipynb"
    nbformat.write(nb, notebook)
    log, killed = tmp_path / "log.txt", []

    def kill_one_worker_in_a_run():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            if len(log.read_text().splitlines() if log.exists() else []) < 2:  # both runs in their sleep
                time.sleep(0.2)
                continue
            for addr, pid in client.run(os.getpid).items():
                if any(b"ipykernel" in Path(f"/proc/{c}/cmdline").read_bytes() for c in children(pid)):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(addr)
                    return
            time.sleep(0.3)

    killer = threading.Thread(target=kill_one_worker_in_a_run)
    killer.start()
    res = sweep(notebook, {"x": [1.0, 2.0], "pause": [4.0], "log": [str(log)]}, tmp_path / "runs",
                profile="smoke", cluster=client, figure=False)
    killer.join()
    assert killed, "no worker was killed"
    assert res.exit_status == 0 and res.count("done") == 2
    for run in res.runs:  # exactly one complete record per run
        assert run.is_complete("slow") and len(list(run.dir.glob("slow.json"))) == 1
    lines = log.read_text().splitlines()
    assert sorted(set(lines)) == ["x=1.0 seed=0", "x=2.0 seed=0"] and len(lines) == 3  # one retry
    client.wait_for_workers(2, timeout=60)  # the nanny replaced the killed worker


def test_the_slurm_path_runs_on_submitit_s_local_executor(local_table, tmp_path, monkeypatch):
    pytest.importorskip("submitit")
    monkeypatch.setenv("ACCEL_SUBMITIT_CLUSTER", "local")
    slurm = sweep(ASSET, GRID, tmp_path / "slurm", profile="smoke", slurm=check_slurm_options("debug", None, 5),
                  figure=False)
    assert slurm.exit_status == 0 and slurm.count("done") == 4
    pd.testing.assert_frame_equal(_table(slurm), local_table)
    assert list((tmp_path / "slurm" / ".submitit").glob("*_submitted.pkl"))  # it went through submitit


from test_cache import book  # noqa: E402,F401 - the tiny two-chapter book fixture


def _setenv(env):
    os.environ.update(env)


def test_book_chapters_on_a_dask_cluster_match_a_local_build(book, client):
    # the workers started before this test: give their kernels the tiny book's environment
    client.run(_setenv, {k: os.environ[k] for k in ("PYTHONPATH", "TINY_BOOK_LOG", "PYTHONDONTWRITEBYTECODE")})
    assert sorted(book.build(jobs=1)) == ["a", "b"]
    local = {n: book.record(n)["metrics"] for n in "ab"}
    assert sorted(book.build(force=True, cluster=client)) == ["a", "b"]
    assert {n: book.record(n)["metrics"] for n in "ab"} == local
    assert book.table()["counts"]["executed"] == 2
    assert book.build(cluster=client) == []  # and the cache serves them next time
