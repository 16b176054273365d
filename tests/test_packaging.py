"""The install path: one list of pins in three files, torch pinned to the CPU build."""
import os
import re
import subprocess
import tomllib

import yaml


def _pins(lines):
    return {re.split(r"[=<>]", l)[0].lower().replace("_", "-"): l.strip()
            for l in lines if l.strip() and not l.strip().startswith(("#", "-"))}


def test_requirements_environment_and_pyproject_agree(root):
    reqs = _pins((root / "requirements.txt").read_text().splitlines())
    env = yaml.safe_load((root / "environment.yml").read_text())
    pip_list = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    env_pins = _pins(p.split("#")[0] for p in pip_list)
    env_pins.pop("torch")
    assert env_pins == reqs
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    deps = _pins(project["dependencies"])
    assert deps.pop("torch") == "torch==2.13.0"
    assert deps == reqs
    assert project["scripts"]["accel"] == "accel.repro.cli:main"


def test_torch_is_pinned_to_the_cpu_build_and_nothing_cuda_is_listed(root):
    constraints = (root / "constraints.txt").read_text()
    assert "torch==2.13.0+cpu" in constraints.splitlines()
    text = constraints + (root / "requirements.txt").read_text()
    everything = "\n".join(l for l in text.lower().splitlines() if not l.startswith("#"))
    for banned in ("torchvision", "timm", "nvidia-", "triton"):
        assert banned not in everything


def test_make_installs_cpu_torch_first_then_everything_under_the_constraints(root, tmp_path):
    """What `make` would run (dry run, forced) on a fresh machine, in order."""
    out = subprocess.run(["make", "-n", "-B", "venv", f"VENV={tmp_path / 'v'}"], cwd=root,
                         capture_output=True, text=True, check=True).stdout
    installs = [l for l in out.splitlines() if " install " in l and "--upgrade pip" not in l]
    assert 'install --quiet "torch==2.13.0+cpu"' in installs[0]
    assert all("-c " in l and "constraints.txt" in l for l in installs[1:]) and len(installs) >= 3
    assert "s/^torch==.*/torch==2.13.0+cpu/" in out  # the derived constraints keep the CPU pin


def test_make_targets_are_phony_and_ci_calls_the_readme_test_command(root):
    makefile = (root / "Makefile").read_text()
    phony = re.search(r"^\.PHONY:(.*)$", makefile, re.M).group(1).split()
    assert {"book", "test"} <= set(phony)
    readme = (root / "README.md").read_text()
    assert "make test" in readme and "make book" in readme
    assert "make test" in (root / ".ci" / "run").read_text()


def test_installed_environment_matches_accel_cuda(monkeypatch):
    """CPU environment (default): no CUDA packages at all. ``ACCEL_CUDA=1`` (the GPU workflow,
    ``make venv ACCEL_TORCH=torch==2.13.0 ACCEL_CUDA=1``): PyPI's CUDA torch and its
    ``nvidia-*`` packages are expected; torchvision and timm are refused either way."""
    from importlib import metadata
    names = {d.metadata["Name"].lower() for d in metadata.distributions()}
    assert not names & {"torchvision", "timm"}
    import torch
    assert torch.__version__.startswith("2.13.0")
    cuda = {n for n in names if n.startswith("nvidia") or n == "triton"}
    if os.environ.get("ACCEL_CUDA") == "1":
        assert "+cpu" not in torch.__version__ and torch.version.cuda, "ACCEL_CUDA=1 expects a CUDA torch"
    else:
        assert not cuda, f"CUDA packages in the CPU environment: {sorted(cuda)}"
        assert torch.version.cuda is None


def test_make_test_passes_accel_cuda_to_the_tests(root):
    out = subprocess.run(["make", "-n", "test", "ACCEL_CUDA=1", "VENV=.venv"], cwd=root,
                         capture_output=True, text=True, check=True).stdout
    assert "ACCEL_CUDA=1" in out and "pytest" in out
    workflow = yaml.safe_load((root / ".github" / "workflows" / "book.yml").read_text())
    assert workflow["jobs"]["book"]["env"]["ACCEL_CUDA"] == "1"
