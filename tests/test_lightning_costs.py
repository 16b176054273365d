"""accel.training's shortcuts past Lightning's fixed costs change no logged number, and step aside where they don't apply."""
from dataclasses import dataclass

import pytest
import torch
from pytorch_lightning.trainer.connectors.logger_connector.result import _Metadata, _ResultMetric, _Sync
from torchmetrics.aggregation import MeanMetric

import accel.training
from accel.data import TensorDataModule
from accel.module import Classifier
from accel.training import fit, skip_needless_moves, states_on

CPU, META = torch.device("cpu"), torch.device("meta")


@dataclass
class _Box:
    inner: object


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 6, generator=g)
    y = (x[:, 0] > 0).long()
    return TensorDataModule(x[:64].numpy(), y[:64].numpy(), x[64:].numpy(), y[64:].numpy(), 16)


def _metric() -> _ResultMetric:
    meta = _Metadata(fx="training_step", name="loss")
    meta.sync = _Sync()
    return _ResultMetric(meta, True)


def test_states_on_finds_a_tensor_wherever_apply_to_collection_would():
    t, elsewhere = torch.zeros(2), torch.zeros(2, device="meta")
    assert states_on({"a": [t, (t, {"b": t})], "n": None, "s": "x", "d": CPU}, CPU)
    for nested in ({"a": elsewhere}, [1, elsewhere], (elsewhere,), _Box(elsewhere), {"x": [_Box({"y": elsewhere})]}):
        assert not states_on(nested, CPU), nested
        assert states_on(nested, META)
    assert not states_on({"m": MeanMetric()}, CPU)  # a nested Metric: its own `to` must run


def test_a_metric_on_the_device_is_not_rebuilt_and_one_elsewhere_is_moved():
    skip_needless_moves()
    metric = _metric()
    meta_before = metric.meta
    assert metric.to(CPU) is metric and metric.meta is meta_before  # nothing to move: untouched
    metric.to(META)  # states elsewhere: Lightning's own `to` moves them
    assert metric.value.device == META and metric.cumulated_batch_size.device == META
    assert metric.meta is not meta_before  # Lightning's path ran: it deep-copies the metadata
    other = _metric()
    assert other.to(torch.float64) is other and other.value.dtype == torch.float64  # other arguments: Lightning


def test_skip_is_applied_once_and_changes_no_logged_number(monkeypatch):
    skip_needless_moves()
    patched = _ResultMetric.to
    skip_needless_moves()
    assert _ResultMetric.to is patched and patched.skips_needless_moves

    def run():
        torch.manual_seed(0)
        module = Classifier({"name": "mlp", "in_features": 6, "hidden": [8], "out_features": 2},
                            {"name": "adam", "lr": 0.01})
        return fit(module, _data(), 3), module

    fast, fast_module = run()
    moves = []

    def lightning_to(self, *args, **kwargs):  # Lightning's own `to`, counted
        moves.append(args)
        return patched.__wrapped__(self, *args, **kwargs)

    monkeypatch.setattr(_ResultMetric, "to", lightning_to)
    monkeypatch.setattr(accel.training, "skip_needless_moves", lambda: None)  # make_trainer must not re-wrap
    slow, slow_module = run()
    assert _ResultMetric.to is lightning_to and len(moves) >= 4 * 3  # every self.log of 3 epochs went through it
    assert fast.equals(slow)
    for p, q in zip(fast_module.parameters(), slow_module.parameters()):
        assert torch.equal(p, q)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_on_a_gpu_a_cpu_state_is_moved_to_the_value():  # pragma: no cover - GPU machines only
    skip_needless_moves()
    metric = _metric()
    metric.to(torch.device("cuda", 0))
    assert metric.value.device.type == "cuda"
