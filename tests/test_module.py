import torch

from accel.data import TensorDataModule
from accel.module import Classifier
from accel.seeding import seed_everything
from accel.training import fit


def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 10, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return TensorDataModule(x[:192].numpy(), y[:192].numpy(), x[192:].numpy(), y[192:].numpy(), 32)


def _run(seed):
    seed_everything(seed)
    module = Classifier({"name": "mlp", "in_features": 10, "hidden": [16], "out_features": 2},
                        {"name": "momentum", "lr": 0.2}, {"name": "cosine", "warmup_steps": 2})
    history = fit(module, _data(), 4)
    return module, history


def test_training_lowers_the_loss_and_records_every_epoch():
    module, history = _run(0)
    assert list(history["epoch"]) == [1, 2, 3, 4]
    assert {"train_loss", "train_acc", "val_loss", "val_acc"} <= set(history.columns)
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert history["val_acc"].iloc[-1] > 0.8
    assert list(history["step"]) == [6, 12, 18, 24]


def test_same_seed_same_weights_other_seed_other_weights():
    a, ha = _run(1)
    b, hb = _run(1)
    c, _ = _run(2)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    assert ha.equals(hb)
    assert any(not torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


def test_optimizer_and_schedule_are_saved_hyperparameters():
    module, _ = _run(0)
    hp = module.hparams
    assert hp["optimizer"] == {"name": "momentum", "lr": 0.2}
    assert hp["schedule"]["name"] == "cosine"
    rebuilt = Classifier(**hp)
    assert sum(p.numel() for p in rebuilt.parameters()) == sum(p.numel() for p in module.parameters())


def test_step_history_records_every_step_with_its_learning_rate():
    from accel.callbacks.history import StepHistory
    seed_everything(0)
    module = Classifier({"name": "mlp", "in_features": 10, "hidden": [8], "out_features": 2},
                        {"name": "sgd", "lr": 0.1}, {"name": "linear"})
    steps = StepHistory()
    fit(module, _data(), 2, callbacks=[steps])
    frame = steps.frame()
    assert list(frame["step"]) == list(range(12))  # update s carries step s (callbacks.base)
    assert frame["lr"].iloc[0] == 0.1  # the rate update 0 used: the schedule's start
    assert frame["lr"].iloc[0] > frame["lr"].iloc[-1]
    assert frame["loss"].notna().all()


def test_loss_is_chosen_by_name_and_bad_names_are_refused():
    import pytest
    import torch

    from accel.losses import one_hot_mse
    from accel.module import Classifier

    spec = {"name": "mlp", "in_features": 4, "hidden": [8], "out_features": 3}
    logits, y = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]), torch.tensor([0, 0])
    # ½‖f − onehot‖² per sample: 0 for the first row, ½(1 + 4) for the second; mean 1.25.
    assert one_hot_mse(logits, y).item() == pytest.approx(1.25)
    module = Classifier(spec, {"name": "sgd", "lr": 0.1}, loss="mse")
    assert module.loss_fn is one_hot_mse and module.hparams.loss == "mse"
    with pytest.raises(ValueError, match="cross_entropy, mse"):
        Classifier(spec, {"name": "sgd", "lr": 0.1}, loss="hinge")


def test_a_fit_is_bitwise_a_hand_written_loop():
    """Lightning's path (hooks, metric bookkeeping, profiler, clipping hook) adds nothing to the
    numbers: the same seed, batches, optimizer and schedule in a plain loop give bitwise the same
    weights, and the logged epoch losses are the float32 sums of loss · batch size in step order."""
    import torch.nn.functional as F

    from accel.callbacks.history import StepHistory
    from accel.data.loader import TensorBatchLoader
    from accel.models import build_model
    from accel.optim import make_optimizer
    from accel.schedules import make_schedule

    spec = {"name": "mlp", "in_features": 10, "hidden": [16], "out_features": 2, "norm": "bn"}
    opt_spec, sched = {"name": "adamw", "lr": 0.01, "weight_decay": 0.1}, {"name": "cosine", "warmup_steps": 2}
    dm = _data()
    seed_everything(3)
    module = Classifier(spec, opt_spec, sched, total_steps=18)
    steps = StepHistory()
    history = fit(module, dm, 3, callbacks=[steps])

    seed_everything(3)
    net = build_model(spec)
    opt = make_optimizer(net, opt_spec)
    schedule = make_schedule(opt, sched, 18)
    loader = TensorBatchLoader(dm.x_train, dm.y_train, dm.batch_size, shuffle=True, seed=dm.seed)
    for epoch in range(3):
        net.train()
        loss_sum = torch.zeros(())
        for x, y in loader:
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
            loss_sum = loss_sum + loss.detach() * len(y)
        assert history["train_loss"].iloc[epoch] == float(loss_sum / len(dm.x_train))
        net.eval()
        with torch.no_grad():
            assert history["val_loss"].iloc[epoch] == float(F.cross_entropy(net(dm.x_test), dm.y_test))
    for (name, p), q in zip(module.net.state_dict().items(), net.state_dict().values()):
        assert torch.equal(p, q), name
    assert len(steps.frame()) == 18
