"""ScheduleFreeMode through the module: train mode for updates, eval mode (the average x) for evaluation."""
import pytest
import pytorch_lightning as pl
import torch

from accel import Classifier, TensorDataModule, fit
from accel.callbacks import ScheduleFreeMode
from accel.models import MLP


def _tensors():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(160, 8, generator=g)
    return x, (x[:, 0] > 0).long()


def _data():
    x, y = _tensors()
    return TensorDataModule(x[:128], y[:128], x[128:], y[128:], batch_size=32, seed=0)


class ModeSpy(pl.Callback):
    """Records the optimizer's mode at every training and validation batch."""

    def __init__(self):
        self.train, self.val = [], []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.train.append(trainer.optimizers[0].param_groups[0]["train_mode"])

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self.val.append(trainer.optimizers[0].param_groups[0]["train_mode"])


def _module(norm=None):
    net = MLP(8, [16], 2) if norm is None else torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.BatchNorm1d(4),
                                                                   torch.nn.Linear(4, 2))
    return Classifier(net, {"name": "adamw_schedulefree", "lr": 1e-2, "warmup_steps": 2})


def test_the_module_trains_in_train_mode_and_validates_at_the_average():
    module, spy = _module(), ModeSpy()
    history = fit(module, _data(), 3, seed=0, callbacks=[ScheduleFreeMode(), spy])
    assert len(history) == 3 and history.val_loss.iloc[-1] < history.val_loss.iloc[0]
    assert spy.train and all(spy.train)
    assert spy.val and not any(spy.val)
    opt = module.trainer.optimizers[0]
    assert not opt.param_groups[0]["train_mode"]            # fit ends at x
    x = [p.detach().clone() for p in module.parameters()]
    opt.train()                                             # y differs from x after training
    assert any(not torch.allclose(a, p) for a, p in zip(x, module.parameters()))


def test_validation_uses_the_averaged_weights():
    module = _module()
    fit(module, _data(), 2, seed=0, callbacks=[ScheduleFreeMode()])
    x, y = _tensors()
    xv, yv = x[128:], y[128:]
    with torch.no_grad():
        at_x = torch.nn.functional.cross_entropy(module(xv), yv)
    module.trainer.optimizers[0].train()
    with torch.no_grad():
        at_y = torch.nn.functional.cross_entropy(module(xv), yv)
    last = module.trainer.callback_metrics["val_loss"]
    assert float(last) == pytest.approx(float(at_x), rel=1e-5) and float(at_x) != pytest.approx(float(at_y))


def test_without_the_callback_the_optimizer_refuses_to_step():
    with pytest.raises(Exception, match="train mode"):
        fit(_module(), _data(), 1, seed=0)


def test_batchnorm_models_are_refused():
    with pytest.raises(ValueError, match="BatchNorm"):
        fit(_module(norm="batch"), _data(), 1, seed=0, callbacks=[ScheduleFreeMode()])
