"""Issue 19: each DDP rank keeps its data on its own device, never all on ``cuda:0``."""
import numpy as np
import pytest
import torch

from accel.data import datamodule
from accel.data.datamodule import TensorDataModule, rank_device


def test_rank_device_follows_local_rank_on_a_gpu_machine(monkeypatch):
    monkeypatch.setattr(datamodule, "default_device", lambda: torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert rank_device() == torch.device("cuda", 1)
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert rank_device() == torch.device("cuda", 0)
    monkeypatch.delenv("LOCAL_RANK")
    assert rank_device() == torch.device("cuda", 0)  # one process: the first GPU


def test_rank_device_on_a_cpu_machine_is_the_cpu(monkeypatch):
    monkeypatch.setattr(datamodule, "default_device", lambda: torch.device("cpu"))
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert rank_device() == torch.device("cpu")


class _Moved:
    """Stands in for a tensor on ``cuda:0``; records where it was moved."""

    def __init__(self, device):
        self.device = device

    def to(self, device):
        return _Moved(device)


def test_setup_moves_a_data_module_built_before_launch_to_the_rank_s_gpu():
    x, y = np.zeros((8, 3), np.float32), np.arange(8) % 2
    dm = TensorDataModule(x, y, x, y, batch_size=4, device="cpu")
    for name in ("x_train", "y_train", "x_test", "y_test"):
        setattr(dm, name, _Moved(torch.device("cuda", 0)))

    class Trainer:
        class strategy:
            root_device = torch.device("cuda", 1)

    dm.trainer = Trainer()
    dm.setup("fit")
    assert {getattr(dm, n).device for n in ("x_train", "y_train", "x_test", "y_test")} == {torch.device("cuda", 1)}
    Trainer.strategy.root_device = torch.device("cpu")  # a CPU strategy never moves anything
    dm.setup("fit")
    assert dm.x_train.device == torch.device("cuda", 1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_on_a_gpu_the_data_lives_on_the_rank_s_device(monkeypatch):
    last = torch.cuda.device_count() - 1
    monkeypatch.setenv("LOCAL_RANK", str(last))
    x, y = np.zeros((8, 3), np.float32), np.arange(8) % 2
    dm = TensorDataModule(x, y, x, y, batch_size=4)
    assert dm.x_train.device == torch.device("cuda", last)
