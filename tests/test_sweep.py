"""`accel sweep`: grids, validation before any run, parallel runs, failures, resume, kills.

The notebook is tests/assets/sweep_tiny.ipynb (no torch: a run is one kernel start).
Its ``log`` parameter appends a line per execution, so a test can count executions;
``x = -1`` raises (division by zero); ``kill_marker`` kills the worker process once.
"""
import json
from pathlib import Path

import pandas as pd
import pytest

from accel.repro.cli import main
from accel.atomic import write_json_atomic
from accel.repro.grid import Run, load_grid_file, merge_grids, parse_grid, run_id, split_values
from accel.repro.sweep import plan
from accel.repro.sweep_table import collect, summary_figure

ASSET = Path(__file__).parent / "assets" / "sweep_tiny.ipynb"


def executions(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


# ---------------------------------------------------------------- grids (no kernel)

def test_grid_values_are_literals_split_outside_brackets():
    assert split_values("1e-3, 3e-3") == ["1e-3", "3e-3"]
    assert split_values("[1, 2],[3],'a,b'") == ["[1, 2]", "[3]", "'a,b'"]
    assert parse_grid(["lr=1e-3,3e-3", "seed=0,1,2", "opt=adam,sgd", "hidden=[64, 64],[32]"]) == {
        "lr": [0.001, 0.003], "seed": [0, 1, 2], "opt": ["adam", "sgd"], "hidden": [[64, 64], [32]]}


def test_grid_file_reads_like_the_command_line(tmp_path):
    f = tmp_path / "grid.yml"
    f.write_text("lr: [1e-3, 0.01]\nseed: [0, 1]\nopt: adam\n")
    grid = load_grid_file(f)
    assert grid == {"lr": [0.001, 0.01], "seed": [0, 1], "opt": ["adam"]}
    assert merge_grids(grid, parse_grid(["seed=5"]))["seed"] == [5]  # --grid wins over the file
    f.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="must be a mapping"):
        load_grid_file(f)


def test_run_id_is_a_stable_hash_of_the_parameters(tmp_path):
    a = run_id("nb", {"profile": "smoke", "x": 0.5, "seed": 1})
    assert a == run_id("nb", {"seed": 1, "x": 0.5, "profile": "smoke"}) and len(a) == 12
    assert a != run_id("nb", {"profile": "smoke", "x": 0.5, "seed": 2}) != run_id("other", {"x": 0.5})
    # an int given for a float parameter names the same run as the float
    one = plan(ASSET, {"x": [1]}, tmp_path, "smoke")[0]
    assert one.params["x"] == 1.0 and one.id == plan(ASSET, {"x": [1.0]}, tmp_path, "smoke")[0].id


@pytest.mark.parametrize("grid, message", [
    ({"sed": [0, 1]}, "no parameter 'sed'; valid parameters: profile, seed, x, fail, kill_marker, log"),
    ({"x": [0.5, "big"]}, "parameter 'x' of sweep_tiny.ipynb expects float .* got str 'big'"),
    ({"seed": [0, True]}, "expects int"),
    ({"profile": ["huge"]}, "valid profiles: smoke, cpu, full"),
    ({}, "empty grid"),
    ({"x": []}, "'x' has no values"),
    ({"x": [1.0, 1.0]}, "repeats a value"),
])
def test_bad_grids_are_refused_before_anything_runs(tmp_path, grid, message):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=message):
        plan(ASSET, grid, out, "smoke")
    assert not out.exists()


def test_cli_refuses_a_bad_grid_before_any_run(tmp_path, capsys):
    out = tmp_path / "out"
    cases = [(["--grid", "x=0.5", "--grid", "sed=1"], "valid parameters: profile, seed, x"),
             (["--grid", "x"], "not of the form name=v1,v2"),
             (["--grid", "x="], "'x' has no values"),
             ([], "empty grid")]
    for extra, message in cases:
        assert main(["sweep", str(ASSET), "--profile", "smoke", "--out", str(out), *extra]) == 2
        assert message in capsys.readouterr().err
    assert main(["sweep", str(tmp_path / "missing.ipynb"), "--grid", "x=1", "--out", str(out)]) == 2
    assert "no notebook at" in capsys.readouterr().err
    assert not out.exists()


def test_a_run_is_complete_only_with_a_complete_record_and_its_notebook(tmp_path):
    run = Run("abc", {"x": 1.0}, tmp_path)
    write_json_atomic(tmp_path / "nb.json", {"complete": True, "metrics": {}})
    assert not run.is_complete("nb")  # no executed notebook
    (tmp_path / "nb.ipynb").write_text("{}")
    assert run.is_complete("nb")
    (tmp_path / "nb.json").write_text('{"complete": tr')  # half-written
    assert not run.is_complete("nb")


def test_table_flattens_metrics_and_figure_shows_seed_bands(tmp_path):
    runs = []
    for x in (0.1, 1.0, 10.0):
        for seed in (0, 1):
            run = Run(f"r{x}{seed}", {"profile": "smoke", "x": x, "seed": seed}, tmp_path / f"r{x}{seed}")
            run.dir.mkdir()
            (run.dir / "nb.ipynb").write_text("{}")
            write_json_atomic(run.dir / "nb.json", {"complete": True, "metrics": {
                "loss": x + seed, "acc": {"val": 0.5}, "curve": [1, 2]}})
            runs.append(run)
    table = collect(runs, "nb", ["x", "seed"])
    assert list(table.columns) == ["run", "profile", "x", "seed", "metric", "value"]
    assert len(table) == 12 and set(table.metric) == {"loss", "acc.val"}
    assert table.query("x == 10.0 and seed == 1 and metric == 'loss'").value.item() == 11.0
    path = summary_figure(table, "loss", ["x", "seed"], tmp_path / "fig.png", notebook="nb")
    assert path.stat().st_size > 1000
    with pytest.raises(ValueError, match="no metric 'lss'.*available: acc.val, loss"):
        summary_figure(table, "lss", ["x", "seed"], tmp_path / "fig.png")


# ---------------------------------------------------------------- sweeps (kernels)

def test_sweep_runs_in_parallel_resumes_and_isolates_a_failure(tmp_path, capsys):
    out, log = tmp_path / "runs", tmp_path / "log.txt"
    base = ["sweep", str(ASSET), "--profile", "smoke", "--workers", "2", "--out", str(out),
            "--grid", f"log={log}"]
    # a 2x2 grid with 2 workers: every record, the table, the figure
    assert main([*base, "--grid", "x=0.5,2.0", "--grid", "seed=0,1", "--metric", "accuracy"]) == 0
    assert len(executions(log)) == 4
    table = pd.read_csv(out / "results.csv")
    assert list(table.columns) == ["run", "profile", "log", "x", "seed", "metric", "value"]
    assert len(table) == 8 and set(table.metric) == {"loss", "accuracy"}
    loss = table[table.metric == "loss"].set_index(["x", "seed"]).value
    assert loss.to_dict() == pytest.approx({(0.5, 0): 0.25, (0.5, 1): 0.35, (2.0, 0): 4.0, (2.0, 1): 4.1})
    runs = json.loads((out / "sweep.json").read_text())["runs"]
    assert len(runs) == 4 and {r["status"] for r in runs} == {"done"}
    for r in runs:
        folder = Path(r["dir"])
        assert folder.name == r["id"] and (folder / "sweep_tiny.ipynb").exists()
        assert json.loads((folder / "sweep_tiny.json").read_text())["complete"] is True
    assert (out / "summary.png").exists() and len(pd.read_csv(out / "claims.csv")) == 4
    mtimes = {p: p.stat().st_mtime_ns for p in out.glob("*/sweep_tiny.json")}

    # the same command again: nothing re-executes
    assert main([*base, "--grid", "x=0.5,2.0", "--grid", "seed=0,1"]) == 0
    assert len(executions(log)) == 4
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/sweep_tiny.json")} == mtimes
    assert "0 executed, 4 already done" in capsys.readouterr().out

    # a wider grid: only the new combination runs, and it raises (x = -1 divides by zero)
    assert main([*base, "--grid", "x=0.5,2.0,-1", "--grid", "seed=0"]) == 1
    assert executions(log)[4:] == ["x=-1.0 seed=0"]
    printed = capsys.readouterr().out
    assert "2 already done, 1 failed" in printed and "ZeroDivisionError" in printed
    status = {r["params"]["x"]: r for r in json.loads((out / "sweep.json").read_text())["runs"]}
    failed = status[-1.0]
    assert failed["status"] == "failed" and "ZeroDivisionError" in failed["error"]
    record = json.loads((Path(failed["dir"]) / "failed.json").read_text())
    assert record["params"] == {"profile": "smoke", "log": str(log), "x": -1.0, "seed": 0}
    assert Path(record["failed_notebook"]).exists() and "Traceback" in record["traceback"]
    assert not (Path(failed["dir"]) / "sweep_tiny.json").exists()
    assert status[0.5]["status"] == status[2.0]["status"] == "done"

    # --force redoes a finished combination
    assert main([*base, "--grid", "x=0.5", "--grid", "seed=0", "--force"]) == 0
    assert executions(log)[5:] == ["x=0.5 seed=0"]


def test_a_killed_worker_loses_only_its_runs_and_resume_completes(tmp_path):
    from accel.repro.sweep import sweep

    out, log, marker = tmp_path / "runs", tmp_path / "log.txt", tmp_path / "killed"
    grid = {"x": [0.5, 1.0, 2.0], "kill_marker": [str(marker)], "log": [str(log)]}
    first = sweep(ASSET, grid, out, profile="smoke", workers=2, figure=False)
    assert marker.exists()  # one run killed the worker process running it
    interrupted = [i for i, s in first.status.items() if s["status"] == "interrupted"]
    assert 1 <= len(interrupted) <= 2 and first.exit_status == len(interrupted)
    assert first.count("done") == 3 - len(interrupted)  # the unstarted run went on in a fresh pool
    for run in first.runs:  # nothing an interrupted run left looks finished
        assert run.is_complete("sweep_tiny") == (run.id not in interrupted)
    second = sweep(ASSET, grid, out, profile="smoke", workers=2, figure=False)
    assert second.exit_status == 0 and second.skipped == 3 - len(interrupted)
    assert all(run.is_complete("sweep_tiny") for run in second.runs)
    assert sorted(second.table[second.table.metric == "loss"].value) == pytest.approx([0.25, 1.0, 4.0])
    assert not list(out.glob("*/failed.json")) and not list(out.glob("*/.*partial*"))
