import json
import subprocess
import sys

import pytest

from accel.repro.cli import main
from accel.repro.runner import NotebookError, check_parameters, notebook_parameters, parse_value, run_notebook


def test_parameters_cell_is_read(tiny_notebook):
    params = notebook_parameters(tiny_notebook)
    assert {k: p.default for k, p in params.items()} == {"profile": "cpu", "seed": 0, "lr": 0.01, "fail": False}


def test_unknown_parameter_is_refused_listing_valid_names(tiny_notebook):
    with pytest.raises(ValueError, match="no parameter 'sed'.*valid parameters: profile, seed, lr, fail"):
        check_parameters(tiny_notebook, {"sed": 3})


def test_wrong_types_and_profiles_are_refused(tiny_notebook):
    with pytest.raises(ValueError, match="expects float"):
        check_parameters(tiny_notebook, {"lr": "fast"})
    with pytest.raises(ValueError, match="expects int"):
        check_parameters(tiny_notebook, {"seed": True})
    with pytest.raises(ValueError, match="valid profiles"):
        check_parameters(tiny_notebook, {"profile": "huge"})
    assert check_parameters(tiny_notebook, {"lr": 1, "seed": 2})  # int for a float is fine


def test_parse_value():
    assert parse_value("3") == 3 and parse_value("1e-3") == 1e-3 and parse_value("[1, 2]") == [1, 2]
    assert parse_value("adam") == "adam"


def test_cli_refuses_a_typo_before_running(tiny_notebook, tmp_path, capsys):
    code = main(["run", str(tiny_notebook), "--profile", "smoke", "-p", "sed", "3", "--out", str(tmp_path / "o")])
    assert code == 2
    assert "valid parameters: profile, seed, lr, fail" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_run_writes_notebook_and_record(tiny_notebook, tmp_path, capsys):
    code = main(["run", str(tiny_notebook), "--profile", "smoke", "-p", "seed", "3", "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "tiny.ipynb") in out and str(tmp_path / "tiny.json") in out
    rec = json.loads((tmp_path / "tiny.json").read_text())
    assert rec["seed"] == 3 and rec["profile"] == "smoke" and rec["metrics"]["loss"] == pytest.approx(0.04)


def test_a_failing_notebook_names_itself_and_its_error(tiny_notebook, tmp_path):
    with pytest.raises(NotebookError, match=r"tiny.ipynb failed in cell .*RuntimeError: asked to fail"):
        run_notebook(tiny_notebook, tmp_path / "out", {"fail": True}, profile="smoke")
    out = tmp_path / "out"
    assert (out / "tiny.failed.ipynb").exists()
    assert not (out / "tiny.ipynb").exists() and not (out / "tiny.json").exists()
    assert not list(out.glob(".*partial*"))


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "accel.repro.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "run" in out.stdout and "book" in out.stdout


def _notebook(path, *sources):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [new_code_cell('profile = "cpu"\nseed = 0', metadata={"tags": ["parameters"]})]
    nb.cells += [new_code_cell(s) for s in sources]
    nbformat.write(nb, path)
    return path


def test_the_record_gets_its_final_name_only_when_the_notebook_is_complete(tmp_path):
    nb = _notebook(tmp_path / "rec.ipynb",
                   "import os\nfrom pathlib import Path\nfrom accel.repro.results import Results\n"
                   "target = Path(os.environ['ACCEL_RESULTS_PATH'])\n"
                   "assert target.name.startswith('.rec.') and target.name.endswith('.partial.json')\n"
                   "Results('rec', profile, seed).save()",
                   "assert target.exists() and not (target.parent / 'rec.json').exists()")
    res = run_notebook(nb, tmp_path / "out", profile="smoke")
    assert res.results == tmp_path / "out" / "rec.json" and res.executed.exists()
    assert json.loads(res.results.read_text())["complete"] is True
    assert not list((tmp_path / "out").glob(".*"))


def test_a_dead_kernel_is_a_notebook_error_not_a_hang(tmp_path):
    nb = _notebook(tmp_path / "dies.ipynb", "import os\nos._exit(3)")
    with pytest.raises(NotebookError, match=r"dies.ipynb failed: DeadKernelError"):
        run_notebook(nb, tmp_path / "out", profile="smoke")
    out = tmp_path / "out"
    assert not (out / "dies.json").exists() and not list(out.glob(".*partial*"))
