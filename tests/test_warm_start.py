"""Checkpoints and warm starts: exact resumption, weights-only loads, warm starts, safe loading."""
import pickle

import numpy as np
import pytest
import torch

from accel import Classifier, TensorDataModule
from accel.callbacks import StepHistory
from accel.seeding import seed_everything
from accel.warm_start import (DataOrder, WarmStart, checkpoint_path, checkpointing, fit_checkpointed,
                              load_checkpoint, load_weights, resume)
from accel.training import fit

MODEL = dict(name="mlp", in_features=6, hidden=[16], out_features=3)
ADAM = {"name": "adam", "lr": 1e-2}
COSINE = {"name": "cosine", "warmup_steps": 3, "eta_min": 1e-4}


def _data():
    g = np.random.default_rng(0)
    x = g.standard_normal((120, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5)
    return TensorDataModule(x, y, x[:40], y[:40], batch_size=20)


def _module(schedule=COSINE):
    return Classifier(MODEL, ADAM, schedule)


def _base(tmp_path, epochs=4, every=2):
    data = _data()
    seed_everything(0)
    log = StepHistory()
    history, files = fit_checkpointed(_module(), data, epochs, tmp_path, every_n_epochs=every, callbacks=[log])
    return data, history, files, log.frame()


def test_checkpoints_are_named_by_epochs_completed(tmp_path):
    _, history, files, _ = _base(tmp_path)
    assert sorted(files) == [2, 4] and files[2] == checkpoint_path(tmp_path, 2) and files[2].exists()
    assert load_checkpoint(files[2])["global_step"] == int(history.step.iloc[1])


def test_resuming_with_the_whole_state_continues_the_run_exactly(tmp_path):
    data, history, files, steps = _base(tmp_path)
    seed_everything(123)  # the global RNG plays no part: the state comes from the file
    module, log = _module(), StepHistory()
    resumed = resume(module, data, 4, files[2], callbacks=[log])
    assert resumed.epoch.tolist() == [3, 4]
    for col in ("train_loss", "val_loss", "val_acc", "step"):
        assert resumed[col].tolist() == history[col].iloc[2:].tolist(), col
    # the step log's rows before the checkpoint come back from the file (callback state)
    assert log.frame().loss.tolist() == steps.loss.tolist()
    end = load_checkpoint(files[4])["state_dict"]
    for name, value in module.state_dict().items():
        assert torch.equal(value, end[name]), name


@pytest.mark.filterwarnings("ignore:Be aware that when using")
def test_without_the_data_order_a_resumed_loader_would_replay_epoch_zero(tmp_path):
    """DataOrder is what makes the resumed batches those of the uninterrupted run."""
    data, history, files, _ = _base(tmp_path)
    seed_everything(0)
    from accel.training import make_trainer
    from accel.callbacks import History
    h = History()
    make_trainer(4, [h]).fit(_module(), datamodule=data, ckpt_path=str(files[2]), weights_only=True)
    assert h.frame().train_loss.tolist() != history.train_loss.iloc[2:].tolist()


def test_weights_only_loads_the_weights_and_a_fresh_optimizer(tmp_path):
    data, _, files, _ = _base(tmp_path)
    module = load_weights(files[2])
    saved = load_checkpoint(files[2])["state_dict"]
    assert all(torch.equal(module.state_dict()[k], v) for k, v in saved.items())
    assert module.optimizer_spec == ADAM and module.schedule_spec == COSINE
    other = load_weights(files[2], optimizer={"name": "sgd", "lr": 0.5}, schedule=None)
    assert other.optimizer_spec["name"] == "sgd" and other.schedule_spec is None
    log = StepHistory()
    fit(module, data, 1, callbacks=[log, DataOrder(2)])
    assert log.frame().lr.iloc[0] == pytest.approx(1e-2 * 1e-3)  # the warm-up starts again


def test_warm_start_keeps_adam_state_but_takes_the_new_rate(tmp_path):
    data, _, files, _ = _base(tmp_path)
    saved = load_checkpoint(files[4])

    class Peek(StepHistory):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            super().on_train_batch_start(trainer, pl_module, batch, batch_idx)
            if trainer.global_step == 0:
                opt = trainer.optimizers[0]
                self.state = {k: v["exp_avg"].clone() for k, v in enumerate(opt.state.values())}
                self.steps = [float(v["step"]) for v in opt.state.values()]
                self.weights = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}

    peek = Peek()
    module = Classifier(MODEL, {"name": "adam", "lr": 3e-4}, None)
    fit(module, data, 1, callbacks=[WarmStart(files[4]), peek])
    assert all(torch.equal(peek.weights[k], v) for k, v in saved["state_dict"].items())
    expected = [v["exp_avg"] for v in saved["optimizer_states"][0]["state"].values()]
    assert all(torch.equal(a, b) for a, b in zip(peek.state.values(), expected))
    assert peek.steps[0] == float(saved["global_step"])  # Adam's bias correction continues
    assert peek.frame().lr.unique().tolist() == [3e-4]


def test_warm_start_without_optimizer_state_starts_adam_afresh(tmp_path):
    data, _, files, _ = _base(tmp_path)
    module = Classifier(MODEL, ADAM, None)
    seen = {}

    class Count(StepHistory):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.setdefault("state", len(trainer.optimizers[0].state))

    fit(module, data, 1, callbacks=[WarmStart(files[4], optimizer_state=False), Count()])
    assert seen["state"] == 0


def test_warm_start_refuses_an_optimizer_state_of_another_grouping(tmp_path):
    data, _, files, _ = _base(tmp_path)
    module = Classifier(MODEL, {**ADAM, "layer_lr": {"1": 0.5}}, None)
    with pytest.raises(ValueError, match="another grouping"):
        fit(module, data, 1, callbacks=[WarmStart(files[4])])


class _Payload:
    def __reduce__(self):
        return (print, ("this would run on load",))


def test_loading_refuses_pickled_code(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": _Payload()}, path)
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(path)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="no checkpoint file"):
        load_weights(tmp_path / "missing.ckpt")
    with pytest.raises(ValueError, match="no checkpoint file"):
        WarmStart(tmp_path / "missing.ckpt")
    with pytest.raises(ValueError, match="positive int"):
        checkpointing(tmp_path, 0)
    with pytest.raises(ValueError, match="offset"):
        DataOrder(-1)
