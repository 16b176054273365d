"""Issue 19: at least 500 generated bad inputs, each a clear error, no file created or changed.

Across the CLI's argument handling (``accel run``/``sweep``/``book``/``report``), grid
parsing, the parameter checker and the library's factories (optimizers, models, norms,
initializations, activations, schedules, profiles, data sets). Each case must end in
the library's ValueError/FileNotFoundError (or argparse's SystemExit) with a message
naming the bad value, raised by `accel` itself (never a traceback from inside torch or
papermill), before any kernel starts (papermill is replaced by a tripwire), and the
working folder must be byte-for-byte what it was. The test prints its figures.
"""
import itertools
import json
import traceback
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from accel.repro.cli import main

PARAMS = '''profile: str = "cpu"          # {smoke, cpu, full}
seed: int = 0
epochs: int | None = None     # [1, 1000]
lr: float | None = None       # learning rate (0, 10]
batch: int | None = None      # batch size [1, train_size]
train_size: int = 1000        # [10, 60000]
norm: str = "bn"              # {bn, ln, none}
widths: list[int] | None = None  # [1, 4096]
verbose: bool = False'''

GOOD = {"epochs": "3", "lr": "0.1", "batch": "32", "train_size": "500", "norm": "ln", "widths": "[8, 8]",
        "verbose": "True", "seed": "1", "profile": "smoke"}


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def _typos(name: str) -> set[str]:
    out = {name[:-1], name + "s", name.upper(), name[0] + name, "_" + name, name + "_"}
    out |= {name[:i] + name[i + 1:] for i in range(len(name))}
    out |= {name[:i] + name[i + 1] + name[i] + name[i + 2:] for i in range(len(name) - 1)}
    return {t for t in out if t and t != name and t.isidentifier()}


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    import papermill

    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [new_code_cell(PARAMS, metadata={"tags": ["parameters"]}), new_code_cell("pass")]
    nbformat.write(nb, tmp_path / "nb.ipynb")
    (tmp_path / "a_file").write_text("not a folder")
    (tmp_path / "folder.ipynb").mkdir()
    (tmp_path / "notes.txt").write_text("not a notebook")
    (tmp_path / "broken.ipynb").write_text("{not json")
    (tmp_path / "records").mkdir()
    for name, text in {"list.yml": "- 1\n- 2\n", "scalar.yml": "3\n", "bad.yml": "x: [1, 2\n",
                       "unknown.yml": "sed: [1]\n", "empty_values.yml": "lr: []\n",
                       "wrongtype.yml": "lr: [fast]\n", "negative.yml": "epochs: [-1]\n"}.items():
        (tmp_path / name).write_text(text)

    def tripwire(*args, **kwargs):
        raise AssertionError("a kernel was started for a bad input")

    monkeypatch.setattr(papermill, "execute_notebook", tripwire)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def cli_cases() -> list[tuple[list[str], str]]:
    """(argv, text the error must contain)."""
    nb = "nb.ipynb"
    cases: list[tuple[list[str], str]] = []
    names = ["profile", "seed", "epochs", "lr", "batch", "train_size", "norm", "widths", "verbose"]
    for name in names:  # misspelled and unknown parameter names
        for typo in sorted(_typos(name)):
            if typo not in names:
                cases.append((["run", nb, "-p", typo, GOOD[name]], f"no parameter {typo!r}"))
                cases.append((["sweep", nb, "--grid", f"{typo}={GOOD[name]}"], f"no parameter {typo!r}"))
    for typo in ("sed", "learning_rate", "epoch", "x", "Seed"):
        cases.append((["sweep", nb, "--grid", f"{typo}=1,2"], f"no parameter {typo!r}"))
    wrong_types = {
        "seed": ["1.5", "'a'", "[1]", "True", "None", "{}"],
        "epochs": ["2.5", "'ten'", "[3]", "False", "{'a': 1}", "(1, 2)"],
        "lr": ["'fast'", "[0.1]", "True", "{}", "nan", "inf", "-inf"],
        "batch": ["32.0", "'big'", "[32]", "True"],
        "train_size": ["None", "1e3", "'all'", "[100]"],
        "norm": ["1", "None", "['bn']", "True"],
        "widths": ["8", "[8, 'x']", "[8.5]", "'8,8'", "[[8]]", "[True]"],
        "verbose": ["1", "'yes'", "None", "[True]"],
    }
    for name, values in wrong_types.items():
        for v in values:
            shown = "nan" if v == "nan" else ("inf" if "inf" in v else None)
            cases.append((["run", nb, "-p", name, v], shown or f"parameter {name!r}"))
            cases.append((["sweep", nb, "--grid", f"{name}={v}"], shown or f"parameter {name!r}"))
    out_of_range = {
        "epochs": [0, -1, -3, 1001, 10**9], "lr": [0, -0.1, -1e-9, 10.5, 1e300],
        "batch": [0, -32, 1001, 10**6], "train_size": [0, 9, -5, 60001, 10**12],
        "norm": ["'bn2'", "'BN'", "'batch'", "''"], "widths": ["[0]", "[8, -1]", "[5000]", "[8, 0, 8]"],
        "profile": ["'huge'", "'Smoke'", "''"],
    }
    for name, values in out_of_range.items():
        for v in values:
            cases.append((["run", nb, "-p", name, str(v)], f"parameter {name!r}" if name != "profile" else "profile"))
            cases.append((["sweep", nb, "--grid", f"{name}={v}"], name if name != "profile" else "profile"))
    for size in (100, 50):  # a batch that does not fit this run's data
        cases.append((["run", nb, "-p", "train_size", str(size), "-p", "batch", str(size + 1)],
                      f"train_size = {size}"))
    missing = ["missing.ipynb", "missing.md", "no/such/dir/nb.ipynb", "../nope.ipynb", "folder.ipynb",
               "notes.txt", "broken.ipynb", "a_file"]
    for path in missing:
        cases.append((["run", path], path.split("/")[-1]))
        cases.append((["sweep", path, "--grid", "lr=0.1"], path.split("/")[-1]))
    for out in ("a_file", "a_file/sub", "/proc/self/accel-out", "/proc/self/x/y"):
        cases.append((["run", nb, "--out", out], out))
        cases.append((["sweep", nb, "--grid", "lr=0.1", "--out", out], out))
        cases.append((["book", "--out", out], out))
    grids = [(["--grid", "lr"], "not of the form"), (["--grid", "=1"], "not of the form"),
             (["--grid", "lr="], "'lr' has no values"), (["--grid", "lr=,"], "'lr' has no values"),
             (["--grid", "lr=0.1,0.1"], "repeats a value"), (["--grid", "lr=0.1", "--grid", "lr=0.2"], "given twice"),
             ([], "empty grid"), (["--grid-file", "missing.yml"], "missing.yml"),
             (["--grid-file", "list.yml"], "must be a mapping"), (["--grid-file", "scalar.yml"], "must be a mapping"),
             (["--grid-file", "bad.yml"], "bad.yml"), (["--grid-file", "unknown.yml"], "'sed'"),
             (["--grid-file", "empty_values.yml"], "'lr' has no values"), (["--grid-file", "wrongtype.yml"], "'fast'"),
             (["--grid-file", "negative.yml"], "-1"), (["--grid-file", "records"], "records"),
             (["--grid", "lr==0.1"], "'=0.1'"), (["--grid", "lr=[0.1"], "'lr'")]
    for extra, message in grids:
        cases.append((["sweep", nb, *extra], message))
    for report in (["report", "missing_records"], ["report", "a_file"], ["report", "records"],
                   ["report", "records", "--out", "a_file/report.md"]):
        cases.append((report, report[1]))
    cases += [(["book", "--only", "zz_nope"], "_toc.yml"), (["book", "--root", "records"], "records"),
              (["book", "--root", "missing_root"], "missing_root"),
              (["book", "--cache", "a_file"], "a_file")]
    return cases


def argparse_cases() -> list[tuple[list[str], str]]:
    """Refused by argparse itself (SystemExit 2, usage and the bad value on stderr)."""
    cases = []
    for cmd in (["run", "nb.ipynb"], ["sweep", "nb.ipynb", "--grid", "lr=0.1"], ["book"]):
        for profile in ("huge", "SMOKE", "", "gpu"):
            cases.append(([*cmd, "--profile", profile], repr(profile)))
    for count in ("0", "-1", "-8", "257", "1000000", "two", "1.5", ""):
        cases.append((["sweep", "nb.ipynb", "--grid", "lr=0.1", "--workers", count], count or "''"))
        cases.append((["book", "--jobs", count], count or "''"))
    for seed in ("one", "1.5", "", "1e3"):
        cases.append((["book", "--seed", seed], seed or "''"))
    cases += [(["runn", "nb.ipynb"], "'runn'"), (["run"], "notebook"), (["run", "nb.ipynb", "-p", "lr"], "-p"),
              (["sweep"], "notebook"), (["report"], "records"), ([], "command"), (["book", "--bogus"], "--bogus")]
    return cases


def library_cases():
    """(callable, text the error must contain) for the factories and checkers."""
    import torch

    from accel.data import make_datamodule
    from accel.models import build_model
    from accel.models.activation import make_activation
    from accel.models.init import init_weights
    from accel.models.norm import check_norm, make_norm
    from accel.optim import make_optimizer
    from accel.repro.profiles import check_profile, resolve
    from accel.repro.grid import parse_grid
    from accel.repro.parameters import parse_parameters
    from accel.schedules import lr_curve

    w = [torch.nn.Parameter(torch.zeros(2))]
    table = {p: {"epochs": 1} for p in ("smoke", "cpu", "full")}
    cases = []
    for name in ("adamm", "Adam", "sgdd", "", "lbfgs2", "nesterov_adam", None, 3, "la rs"):
        cases.append((lambda n=name: make_optimizer(w, {"name": n, "lr": 0.1}), repr(name)))
    for key, value in itertools.product(("lr", "eps"), (0, -1, -1e-8, float("nan"), float("inf"), "x")):
        if True:
            cases.append((lambda k=key, v=value: make_optimizer(w, {"name": "adam", k: v}), repr(value)))
    for key, value in itertools.product(("momentum",), (1, 1.5, -0.1, "a")):
        cases.append((lambda k=key, v=value: make_optimizer(w, {"name": "sgd", "lr": 0.1, k: v}), repr(value)))
    for betas in ((0.9,), (1.0, 0.999), (0.9, -0.1), "x", (0.9, 2)):
        cases.append((lambda b=betas: make_optimizer(w, {"name": "adam", "lr": 0.1, "betas": b}), "betas"))
    for wd in (-0.1, -1, "x"):
        cases.append((lambda v=wd: make_optimizer(w, {"name": "adamw", "lr": 0.1, "weight_decay": v}), repr(wd)))
    for bogus in ("lrr", "moment", "beta"):
        cases.append((lambda b=bogus: make_optimizer(w, {"name": "adam", "lr": 0.1, b: 1}), bogus))
    for model in ("mlp2", "resnet", "", None, "MLP", "cnn"):
        cases.append((lambda m=model: build_model({"name": m}), repr(model)))
    for norm in ("batchnorm", "BN", "layer", "", "gn2", "none "):
        cases.append((lambda n=norm: check_norm(n), repr(norm)))
        cases.append((lambda n=norm: make_norm(n, 8), repr(norm)))
    for init in ("xavier", "he", "kaiming_normal", "", "Zero", "glorot"):
        cases.append((lambda i=init: init_weights(torch.nn.Linear(2, 2), i), repr(init)))
    for act in ("relu6", "Relu", "swishh", "", "leaky"):
        cases.append((lambda a=act: make_activation(a), repr(act)))
    for spec in ({"name": "cosin"}, {"name": "step"}, {"name": "step", "step_size": 0},
                 {"name": "step", "step_size": -3}, {"name": "cosine", "bogus": 1}, {"name": ""},
                 {"name": "one_cycle", "pct_start": 1.5}, {"name": "linear", "end_factor": -1},
                 {"name": "constant", "warmup_steps": -1}, {"name": "sgdr", "T_0": 0}):
        needle = spec.get("name") if spec["name"] in ("cosin", "") else next(iter(spec.keys() - {"name"}), "step_size")
        cases.append((lambda s=spec: lr_curve(s, 100), repr(needle) if spec["name"] in ("cosin", "") else needle))
    for total in (0, -5):
        cases.append((lambda t=total: lr_curve({"name": "cosine"}, t), str(total)))
    for profile in ("huge", "", "Smoke", None, 1):
        cases.append((lambda p=profile: check_profile(p), repr(profile)))
        cases.append((lambda p=profile: resolve(p, table), repr(profile)))
    for knob in ("epoch", "lr", "Epochs"):
        cases.append((lambda k=knob: resolve("cpu", table, {k: 1}), repr(knob)))
    for name in ("mnist2", "cifar", "", "MNIST1D"):
        cases.append((lambda n=name: make_datamodule(n), repr(name)))
    for size in (0, -1, 10**9):
        cases.append((lambda s=size: make_datamodule("digits", train_size=s), str(size)))
    for batch in (0, -1, 10**9):  # larger than the data: refused when batches are dropped
        cases.append((lambda b=batch: make_datamodule("digits", batch_size=b, drop_last=True), str(batch)))
    for item in (["lr"], ["=1"], ["lr=1", "lr=2"], [" =3"]):
        cases.append((lambda i=item: parse_grid(i), "lr" if "lr" in str(item) else "not of the form"))
    for source, needle in (("x = (", "not valid Python"), ("x += 1", "may only assign names"),
                           ("x = f()", "literal default"), ("x: tuple[int] = (1,)", "unsupported parameter annotation"),
                           ("import os", "may only assign names"), ("x: Foo = 1", "'Foo'")):
        cases.append((lambda s=source: parse_parameters(s), needle))
    return cases


def test_at_least_500_bad_inputs_each_end_in_a_clear_error_and_touch_no_file(workspace, capsys):
    before = _snapshot(workspace)
    cli, parsed, library = cli_cases(), argparse_cases(), library_cases()
    unclear = []
    for argv, needle in cli:
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code
        err = capsys.readouterr().err
        if code != 2 or needle not in err or "Traceback" in err:
            unclear.append((argv, code, needle, err[-300:]))
    for argv, needle in parsed:
        with pytest.raises(SystemExit) as info:
            main(argv)
        err = capsys.readouterr().err
        if info.value.code != 2 or needle not in err:
            unclear.append((argv, info.value.code, needle, err[-300:]))
    for fn, needle in library:
        try:
            fn()
        except (ValueError, FileNotFoundError) as err:
            where = traceback.extract_tb(err.__traceback__)[-1].filename
            if needle not in str(err) or "/accel/" not in where:
                unclear.append((fn, type(err).__name__, needle, f"{err} (raised in {where})"))
        except Exception as err:  # noqa: BLE001 - anything else is not a clear error
            unclear.append((fn, type(err).__name__, needle, str(err)))
        else:
            unclear.append((fn, "accepted", needle, ""))
    after = _snapshot(workspace)
    touched = sorted(set(before.items()) ^ set(after.items()))
    total = len(cli) + len(parsed) + len(library)
    print(f"\nbad inputs tried: {total} (CLI {len(cli)}, argparse {len(parsed)}, library {len(library)}); "
          f"clear errors: {total - len(unclear)}; files touched: {len(touched)}")
    assert not unclear, json.dumps([[str(x) for x in u] for u in unclear[:15]], indent=1)
    assert total >= 500
    assert not touched, touched
