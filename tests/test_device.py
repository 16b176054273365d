"""Precision follows the accelerator actually used; the environment can override it."""
from accel.device import PRECISION_ENV, default_precision
from accel.training import make_trainer


def test_cpu_runs_keep_fp32_and_the_environment_overrides(monkeypatch):
    monkeypatch.delenv(PRECISION_ENV, raising=False)
    assert default_precision("cpu") == "32-true"  # even on a GPU machine, a CPU run is fp32
    monkeypatch.setenv(PRECISION_ENV, "bf16-mixed")
    assert default_precision("cpu") == "bf16-mixed"


def test_make_trainer_takes_precision_from_its_accelerator(monkeypatch):
    monkeypatch.delenv(PRECISION_ENV, raising=False)
    trainer = make_trainer(1, accelerator="cpu")
    assert trainer.precision == "32-true"
    assert make_trainer(1, accelerator="cpu", precision="bf16-mixed").precision == "bf16-mixed"
