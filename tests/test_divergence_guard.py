from pathlib import Path

"""DivergenceGuard: recovery from a learning-rate spike, giving up, atomic snapshots, checkpoints."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from accel.callbacks import divergence_guard as dg
from accel.schedules import make_schedule
from accel.callbacks.divergence_guard import DivergenceError, DivergenceGuard, save_atomic, scale_learning_rates
from accel.data import TensorDataModule
from accel.callbacks.history import StepHistory
from accel.models import MLP
from accel.module import Classifier
from accel.seeding import seed_everything
from accel.training import fit, make_trainer


def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(512, 10, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return TensorDataModule(x[:384].numpy(), y[:384].numpy(), x[384:].numpy(), y[384:].numpy(), 32)


def _module(lr=0.1, spike=1.0, start=30, length=5):
    seed_everything(0)
    net = MLP(10, [32, 32], 2, init="he_normal")
    schedule = {"name": "spike", "start": start, "length": length, "factor": spike} if length else None
    return Classifier(net, {"name": "momentum", "lr": lr}, schedule)


def test_spiked_run_diverges_without_the_guard():
    steps = StepHistory()
    fit(_module(spike=1e4), _data(), 5, callbacks=[steps])
    assert not np.isfinite(steps.frame()["loss"].iloc[-1])


def test_guard_recovers_and_records_interventions(tmp_path):
    steps = StepHistory()
    guard = DivergenceGuard(factor=3.0, snapshot_every=5, lr_factor=0.1, max_retries=5, verbose=False,
                            path=tmp_path / "good.pt")
    module = _module(spike=1e4)
    history = fit(module, _data(), 5, callbacks=[steps, guard])
    events = guard.frame()
    assert len(events) >= 1
    first = events.iloc[0]
    assert 30 <= first["step"] <= 40 and first["restored_step"] < 31
    assert first["new_lr"] == pytest.approx(0.1 * 0.1)
    assert list(events["lr_scale"]) == pytest.approx([0.1 ** (i + 1) for i in range(len(events))])
    # the run finished with a finite, low loss and finite weights
    assert steps.frame()["step"].max() == 5 * 12 - 1  # updates 0..59
    assert np.isfinite(steps.frame()["loss"].iloc[-5:]).all()
    assert history["train_loss"].iloc[-1] < 0.5 and history["val_acc"].iloc[-1] > 0.8
    assert all(torch.isfinite(p).all() for p in module.parameters())
    # the last good snapshot is on disk and complete
    snap = torch.load(tmp_path / "good.pt", weights_only=False)
    assert {"step", "lr_scale", "model", "optimizers", "schedulers"} <= set(snap)


def test_guard_gives_up_after_max_retries():
    guard = DivergenceGuard(lr_factor=0.5, max_retries=2, verbose=False)
    with pytest.raises(DivergenceError, match=r"after 2 rollbacks \(max_retries=2\)"):
        fit(_module(lr=1e8), _data(), 3, callbacks=[guard])
    assert len(guard.interventions) == 2


def test_lr_is_lowered_relative_to_the_restored_snapshot():
    """Two rollbacks to the same snapshot must leave lr × f², not lr × f."""
    guard = DivergenceGuard(lr_factor=0.5, max_retries=5, snapshot_every=1000, verbose=False)
    trainer = make_trainer(1, [guard])
    module = _module(lr=1.0)
    trainer.fit(module, datamodule=_data())  # one healthy epoch; only the initial snapshot is good
    guard._intervene(trainer, module, float("nan"))
    guard._intervene(trainer, module, float("nan"))
    opt = trainer.optimizers[0]
    sched = trainer.lr_scheduler_configs[0].scheduler
    assert opt.param_groups[0]["lr"] == pytest.approx(0.25)
    assert sched.base_lrs == [pytest.approx(0.25)] * len(sched.base_lrs)
    assert guard.good_step == 0


def test_spike_rules():
    med = DivergenceGuard(factor=2.0, rule="median", window=5, min_history=3)
    assert med.is_spike(float("nan")) and med.is_spike(float("inf"))
    assert not med.is_spike(100.0)  # no history yet: only non-finite losses count
    for loss in (1.0, 1.0, 10.0):
        med._record_healthy(loss)
    assert med.reference() == 1.0  # median, robust to the one outlier
    assert med.is_spike(2.01) and not med.is_spike(2.0)
    ema = DivergenceGuard(factor=2.0, rule="ema", ema_decay=0.5, window=5, min_history=2)
    for loss in (1.0, 3.0):
        ema._record_healthy(loss)
    assert ema.reference() == pytest.approx(2.0)  # 0.5·1 + 0.5·3
    assert ema.is_spike(4.01) and not ema.is_spike(3.99)


def test_bad_arguments_name_the_choices():
    with pytest.raises(ValueError, match="median, ema"):
        DivergenceGuard(rule="mean")
    with pytest.raises(ValueError, match="lr_factor"):
        DivergenceGuard(lr_factor=2.0)
    with pytest.raises(ValueError, match="factor"):
        DivergenceGuard(factor=0.5)
    with pytest.raises(ValueError, match="max_retries"):
        DivergenceGuard(max_retries=-1)


def test_scale_learning_rates_rescales_the_rest_of_the_schedule():
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    seq = make_schedule(opt, {"name": "constant", "warmup_steps": 2, "warmup_start_factor": 0.1}, 10)
    scale_learning_rates([opt], [seq], 0.5)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05) and opt.param_groups[0]["initial_lr"] == 0.5
    assert seq.base_lrs == [0.5]
    for _ in range(4):
        opt.step()
        seq.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5)  # after warm-up: the scaled base, not 1.0


def test_atomic_write_leaves_the_old_file_intact_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "snap.pt"
    save_atomic({"step": 1, "w": torch.arange(3.0)}, path)
    before = path.read_bytes()

    def broken_save(obj, f):
        Path(f).write_bytes(b"half a checkpoint")  # some bytes reach the disk, then the writer dies
        raise OSError("disk full")

    monkeypatch.setattr(dg.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_atomic({"step": 2, "w": torch.zeros(3)}, path)
    assert path.read_bytes() == before
    assert torch.load(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["snap.pt"]  # no temporary file left behind


def test_guard_state_is_saved_in_lightning_checkpoints(tmp_path):
    guard = DivergenceGuard(lr_factor=0.1, snapshot_every=5, max_retries=5, verbose=False)
    trainer = make_trainer(3, [guard])
    trainer.fit(_module(spike=1e4), datamodule=_data())
    assert guard.interventions
    ckpt = tmp_path / "run.ckpt"
    trainer.save_checkpoint(ckpt)
    state = torch.load(ckpt, weights_only=False)["callbacks"]
    (key,) = [k for k in state if k.startswith("DivergenceGuard")]
    fresh = DivergenceGuard(lr_factor=0.1, snapshot_every=5, max_retries=5)
    fresh.load_state_dict(state[key])
    assert fresh.interventions == guard.interventions
    assert fresh.frame().equals(guard.frame())
    assert fresh.lr_scale == guard.lr_scale and list(fresh.losses) == list(guard.losses)
    assert math.isclose(fresh.lr_scale, 0.1 ** len(guard.interventions))


def test_guard_is_a_monitor_and_labels_the_update_whose_loss_spiked():
    """Step as in callbacks/base.py: the rollback carries the step of the update whose loss
    triggered it, the same step StepHistory gives that loss; a spike at update 30 corrupts
    the loss of update 31 first."""
    from accel.callbacks.base import Monitor
    steps = StepHistory()
    guard = DivergenceGuard(factor=3.0, snapshot_every=5, lr_factor=0.1, max_retries=5, verbose=False)
    assert isinstance(guard, Monitor)
    fit(_module(spike=1e4, start=30), _data(), 4, callbacks=[steps, guard])
    first = guard.frame().iloc[0]
    assert first["action"] == "rollback" and first["step"] == 31
    assert steps.frame().set_index("step").loss.loc[31] == pytest.approx(first["loss"])
    assert first["restored_step"] <= 30          # weights from before the spiked update


def _restore_run(restore_after, lr_factor=0.01, epochs=8):
    guard = DivergenceGuard(factor=3.0, snapshot_every=5, lr_factor=lr_factor, max_retries=5,
                            restore_after=restore_after, verbose=False)
    trainer = make_trainer(epochs, [guard])
    module = _module(lr=0.1, spike=1e3, start=30)
    trainer.fit(module, datamodule=_data())
    return guard, trainer


def test_restore_after_raises_the_rate_back_after_healthy_steps():
    guard, trainer = _restore_run(restore_after=15)
    events = guard.frame()
    rollbacks, raises = events[events.action == "rollback"], events[events.action == "raise lr"]
    assert len(rollbacks) >= 1 and len(raises) == len(rollbacks)   # each lowering undone once
    # the first raise comes exactly 15 healthy steps after the last rollback before it
    last_rollback = rollbacks.step[rollbacks.step < raises.step.iloc[0]].max()
    assert raises.step.iloc[0] - last_rollback == 15
    assert list(raises.lr_scale)[-1] == 1.0 and guard.lr_scale == 1.0
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.1)
    assert all(v == pytest.approx(0.1) for v in trainer.lr_scheduler_configs[0].scheduler.base_lrs)


def test_without_restore_the_rate_stays_lowered():
    guard, trainer = _restore_run(restore_after=None)
    assert (guard.frame().action == "rollback").all()
    assert guard.lr_scale == pytest.approx(0.01 ** len(guard.interventions)) and guard.lr_scale < 1
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.1 * guard.lr_scale)


def test_raising_never_exceeds_the_planned_rate():
    guard = DivergenceGuard(lr_factor=0.25, restore_after=1, snapshot_every=1000, verbose=False)
    trainer = make_trainer(1, [guard])
    module = _module(lr=1.0)
    trainer.fit(module, datamodule=_data())
    guard._intervene(trainer, module, float("nan"))            # scale 0.25
    guard._raise(trainer, 1.0, 99)                             # back to 1, not 4
    assert guard.lr_scale == 1.0 and trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(1.0)
    guard.on_train_batch_end(trainer, module, {"loss": torch.tensor(1.0)}, None, 0)
    assert guard.lr_scale == 1.0                               # nothing left to restore
    assert list(guard.frame().action) == ["rollback", "raise lr"]


def test_bad_restore_after():
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="restore_after"):
            DivergenceGuard(restore_after=bad)
