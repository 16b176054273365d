"""Seeds trained together (accel.ensemble): member k is a separate run with seed k."""
import pytest
import torch

from accel.data import TensorDataModule
from accel.data.loader import StackedBatches, TensorBatchLoader
from accel.ensemble import StackedEnsemble, check_elementwise
from accel.models import build_model
from accel.module import Classifier
from accel.optim import make_optimizer
from accel.training import run_seeds, train_seeds

SEEDS = [0, 1]
MLP = {"name": "mlp", "in_features": 40, "hidden": [32, 32], "out_features": 10}
CNN = {"name": "cnn1d", "in_channels": 1, "channels": [8, 8], "num_classes": 10}


def _data(batch_size=64):
    """640 training rows in batches of 64: 10 steps an epoch, 50 steps in 5 epochs."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(768, 40, generator=g)
    y = (x @ torch.randn(40, 10, generator=g)).argmax(1)
    return TensorDataModule(x[:640].numpy(), y[:640].numpy(), x[640:].numpy(), y[640:].numpy(), batch_size)


def _both(model, optimizer, schedule=None, epochs=5, loss="cross_entropy"):
    build = lambda: Classifier(model, optimizer, schedule, loss=loss)  # noqa: E731
    return (run_seeds(build, _data(), epochs, SEEDS),
            run_seeds(build, _data(), epochs, SEEDS, ensemble=True))


def _assert_members_match(seq, ens, skip=(), cols=("train_loss", "train_acc", "val_loss", "val_acc")):
    cols = list(cols)
    assert list(ens.history.columns) == list(seq.history.columns)
    assert ens.history[["epoch", "step", "seed"]].equals(seq.history[["epoch", "step", "seed"]])
    assert list(ens.history["step"])[-1] == 50
    torch.testing.assert_close(torch.tensor(ens.history[cols].values), torch.tensor(seq.history[cols].values),
                               rtol=1e-4, atol=1e-6)
    for s in SEEDS:
        a, b = seq.nets[s].state_dict(), ens.nets[s].state_dict()
        assert a.keys() == b.keys()
        for name in a:
            if not any(name.endswith(k) for k in skip):
                torch.testing.assert_close(b[name], a[name], rtol=1e-4, atol=1e-6, msg=f"seed {s}: {name}")


@pytest.mark.parametrize("model, optimizer, schedule, loss", [
    (MLP, {"name": "adam", "lr": 3e-3, "weight_decay": 0.01}, {"name": "cosine", "warmup_steps": 5}, "cross_entropy"),
    (MLP, {"name": "momentum", "lr": 0.05}, {"name": "linear"}, "mse"),
    (CNN, {"name": "adam", "lr": 3e-3}, {"name": "cosine"}, "cross_entropy"),
    ({**CNN, "norm": "bn"}, {"name": "momentum", "lr": 0.05}, {"name": "linear"}, "cross_entropy"),
    ({**MLP, "norm": "bn"}, {"name": "momentum", "lr": 0.05}, None, "cross_entropy"),
], ids=["mlp-adam-cosine", "mlp-momentum-linear-mse", "cnn-adam-cosine", "cnn-bn-momentum", "mlp-bn-momentum"])
def test_member_k_matches_a_separate_run_with_seed_k_after_50_steps(model, optimizer, schedule, loss):
    seq, ens = _both(model, optimizer, schedule, loss=loss)
    _assert_members_match(seq, ens)


def test_batchnorm_with_adam_matches_except_the_biases_batchnorm_cancels():
    # A bias right before BatchNorm has a zero gradient in exact arithmetic (BN subtracts
    # the mean): its computed gradient is rounding noise, which Adam normalizes into full
    # steps, so those biases (and the running means they shift, hence the evaluation
    # metrics) legitimately differ. Everything the training loss depends on matches.
    seq, ens = _both({**CNN, "norm": "bn"}, {"name": "adam", "lr": 3e-3})
    _assert_members_match(seq, ens, skip=("features.0.bias", "features.3.bias", "running_mean"),
                          cols=("train_loss", "train_acc"))


def test_train_seeds_returns_the_same_tidy_frame_with_labels():
    build = lambda: Classifier(MLP, {"name": "sgd", "lr": 0.1})  # noqa: E731
    seq = train_seeds(build, _data(), 2, SEEDS, init="default")
    ens = train_seeds(build, _data(), 2, SEEDS, ensemble=True, init="default")
    assert list(ens.columns) == ["epoch", "step", "train_loss", "train_acc", "val_loss", "val_acc", "seed", "init"]
    assert list(ens.columns) == list(seq.columns)
    assert list(ens["seed"]) == [0, 0, 1, 1] and set(ens["init"]) == {"default"}


@pytest.mark.parametrize("name", ["lars", "lamb", "shampoo", "soap", "muon", "adam_mini", "adahessian"])
def test_coupling_optimizers_are_refused_saying_why(name):
    with pytest.raises(ValueError, match="cannot train a stacked seed ensemble"):
        check_elementwise(name)
    build = lambda: Classifier(MLP, {"name": name, "lr": 1e-3})  # noqa: E731
    with pytest.raises(ValueError, match=f"optimizer '{name}' cannot train a stacked seed ensemble.*ensemble=False"):
        train_seeds(build, _data(), 1, SEEDS, ensemble=True)


def test_elementwise_optimizers_build_on_stacked_parameters():
    net = StackedEnsemble([build_model(MLP) for _ in range(3)])
    for name in ["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad", "radam", "nadam"]:
        check_elementwise(name)
        make_optimizer(net, {"name": name, "lr": 1e-3})


def test_norm_clipping_and_per_seed_callbacks_are_refused_value_clipping_is_not():
    build = lambda: Classifier(MLP, {"name": "sgd", "lr": 0.1})  # noqa: E731
    with pytest.raises(ValueError, match="clipping by norm.*gradient_clip_algorithm='value'"):
        train_seeds(build, _data(), 1, SEEDS, ensemble=True, trainer_options={"gradient_clip_val": 1.0})
    with pytest.raises(ValueError, match="per-seed callbacks are not supported with ensemble=True"):
        train_seeds(build, _data(), 1, SEEDS, ensemble=True, callbacks=lambda: [])
    frame = train_seeds(build, _data(), 1, SEEDS, ensemble=True,
                        trainer_options={"gradient_clip_val": 0.5, "gradient_clip_algorithm": "value"})
    assert len(frame) == len(SEEDS)


def test_only_classifiers_of_one_setup_stack():
    with pytest.raises(ValueError, match="Classifier"):
        train_seeds(lambda: torch.nn.Linear(2, 2), _data(), 1, SEEDS, ensemble=True)
    lrs = iter([0.1, 0.2])
    with pytest.raises(ValueError, match="same optimizer"):
        train_seeds(lambda: Classifier(MLP, {"name": "sgd", "lr": next(lrs)}), _data(), 1, SEEDS, ensemble=True)
    with pytest.raises(ValueError, match="one architecture"):
        StackedEnsemble([build_model(MLP), build_model({**MLP, "hidden": [16]})])


def test_stacked_biases_and_norm_weights_get_no_weight_decay():
    net = StackedEnsemble([build_model({**MLP, "norm": "bn"}) for _ in range(2)])
    opt = make_optimizer(net, {"name": "adamw", "lr": 1e-3, "weight_decay": 0.1})
    decayed = {p.ndim for p in opt.param_groups[0]["params"]}
    plain = {p.ndim for p in opt.param_groups[1]["params"]}
    assert opt.param_groups[0]["weight_decay"] == 0.1 and opt.param_groups[1]["weight_decay"] == 0.0
    assert decayed == {3} and plain == {2}  # stacked matrices vs stacked biases and BN gains


def test_members_are_separate_networks_and_stacked_batches_are_the_members_batches():
    nets = [build_model({**CNN, "norm": "bn"}) for _ in range(3)]
    ens = StackedEnsemble(nets).eval()
    x = torch.randn(5, 40)
    out = ens(x)
    assert out.shape == (3, 5, 10)
    for k, net in enumerate(nets):
        torch.testing.assert_close(out[k], net.eval()(x))
        torch.testing.assert_close(ens.member(k).eval()(x), out[k])
    x, y = torch.arange(20.).reshape(10, 2), torch.arange(10)
    loaders = [TensorBatchLoader(x, y, 4, shuffle=True, seed=s) for s in (3, 4)]
    stacked = list(StackedBatches([TensorBatchLoader(x, y, 4, shuffle=True, seed=s) for s in (3, 4)]))
    for i, (member_3, member_4) in enumerate(zip(*loaders)):
        assert torch.equal(stacked[i][1], torch.stack([member_3[1], member_4[1]]))
    with pytest.raises(ValueError, match="differ in length"):
        StackedBatches([TensorBatchLoader(x, y, 4), TensorBatchLoader(x, y, 5)])


def _vmap_forward(ens: StackedEnsemble, x: torch.Tensor, stacked: bool) -> torch.Tensor:
    params, buffers = ens._tensors()
    return torch.vmap(ens._member_forward, in_dims=(0, 0, 0 if stacked else None),
                      randomness="different")(params, buffers, x)


@pytest.mark.parametrize("activation", ["relu", "gelu", "tanh", "leaky_relu"])
def test_an_mlps_batched_matmul_path_is_vmap_bit_for_bit_forward_and_backward(activation):
    torch.manual_seed(0)
    nets = [build_model({"name": "mlp", "in_features": 12, "hidden": [16, 8], "out_features": 3,
                         "activation": activation}) for _ in range(4)]
    ens = StackedEnsemble(nets)
    assert ens._direct is not None
    for stacked, x in ((True, torch.randn(4, 5, 3, 4)), (False, torch.randn(7, 12))):
        outs, grads = [], []
        for forward in (ens, lambda x, stacked: _vmap_forward(ens, x, stacked)):
            ens.zero_grad(set_to_none=True)
            out = forward(x, stacked=stacked)
            out.square().sum().backward()
            outs.append(out.detach())
            grads.append([p.grad.clone() for p in ens.parameters()])
        assert outs[0].shape == (4, x.shape[1] if stacked else 7, 3)
        assert torch.equal(outs[0], outs[1])
        assert all(torch.equal(a, b) for a, b in zip(*grads))


@pytest.mark.parametrize("spec", [
    {"name": "mlp", "in_features": 12, "hidden": [16], "out_features": 3, "norm": "bn"},
    {"name": "mlp", "in_features": 12, "hidden": [16], "out_features": 3, "dropout": 0.5},
    {"name": "cnn1d", "in_channels": 1, "channels": [4], "num_classes": 3},
])
def test_models_with_state_randomness_or_other_layers_keep_the_vmap_path(spec):
    assert StackedEnsemble([build_model(spec) for _ in range(2)])._direct is None
