"""Presentation orders: each a permutation (or draw) with its defining property, deterministic given the seed."""
import pytest
import torch

from accel.data import TensorBatchLoader
from accel.data.samplers import (Balanced, Fixed, LossProportional, Reshuffled, SampledBatchLoader,
                                 SampledDataModule, Sorted, make_order)

LABELS = torch.arange(400) % 10   # 40 per class, interleaved
LABELS = LABELS[torch.randperm(400, generator=torch.Generator().manual_seed(0))]


def is_permutation(idx, n=400):
    return sorted(idx.tolist()) == list(range(n))


def test_reshuffled_is_the_batch_loaders_shuffle():
    x = torch.arange(400).float().unsqueeze(1)
    loader = TensorBatchLoader(x, LABELS, 400, shuffle=True, seed=5)
    for epoch in range(3):
        (xb, _), = list(loader)
        assert torch.equal(xb[:, 0].long(), Reshuffled().indices(epoch, LABELS, 5))
    assert not torch.equal(Reshuffled().indices(0, LABELS, 5), Reshuffled().indices(1, LABELS, 5))


def test_fixed_repeats_one_permutation():
    a, b = Fixed().indices(0, LABELS, 2), Fixed().indices(7, LABELS, 2)
    assert is_permutation(a) and torch.equal(a, b)
    assert not torch.equal(a, Fixed().indices(0, LABELS, 3))


def test_sorted_groups_classes_in_order_with_a_seeded_order_within():
    idx = Sorted().indices(0, LABELS, 1)
    assert is_permutation(idx)
    assert (LABELS[idx].diff() >= 0).all()
    assert torch.equal(idx, Sorted().indices(4, LABELS, 1))
    assert not torch.equal(idx, Sorted().indices(0, LABELS, 2))


def test_balanced_spreads_every_class_evenly_over_the_epoch():
    labels = torch.cat([torch.zeros(100), torch.ones(200), torch.full((100,), 2)]).long()
    for epoch in range(3):
        idx = Balanced().indices(epoch, labels, 0)
        assert is_permutation(idx)
        ordered = labels[idx]
        for start in range(0, 400 - 40 + 1, 7):   # every window of 40: 10/20/10 up to ±2
            counts = torch.bincount(ordered[start:start + 40], minlength=3)
            assert (counts - torch.tensor([10, 20, 10])).abs().max() <= 2
    assert not torch.equal(Balanced().indices(0, labels, 0), Balanced().indices(1, labels, 0))
    assert torch.equal(Balanced().indices(1, labels, 0), Balanced().indices(1, labels, 0))


def test_loss_proportional_probabilities_and_frequencies():
    losses = torch.tensor([0.0, 1.0, 3.0, 0.0])
    p = LossProportional(0.5).probabilities(losses)
    torch.testing.assert_close(p, torch.tensor([0.125, 0.25, 0.5, 0.125], dtype=torch.float64))
    torch.testing.assert_close(LossProportional(1.0).probabilities(losses), torch.full((4,), 0.25, dtype=torch.float64))
    order = LossProportional(0.5)
    labels = torch.zeros(4, dtype=torch.long)
    draws = torch.cat([order.indices(e, labels, 0, losses) for e in range(5000)])
    freq = torch.bincount(draws, minlength=4).double() / len(draws)
    assert (freq - p).abs().max() < 0.01
    assert torch.equal(order.indices(3, labels, 1, losses), order.indices(3, labels, 1, losses))


def test_loss_proportional_refuses_bad_losses():
    order = LossProportional()
    with pytest.raises(ValueError, match="needs the current per-sample losses"):
        order.indices(0, LABELS, 0)
    with pytest.raises(ValueError, match="finite"):
        order.indices(0, torch.zeros(2).long(), 0, torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match="2 losses for 400"):
        order.indices(0, LABELS, 0, torch.ones(2))
    with pytest.raises(ValueError, match="uniform"):
        LossProportional(1.5)


def test_make_order_names_the_valid_orders():
    assert isinstance(make_order("balanced"), Balanced)
    with pytest.raises(ValueError, match="reshuffled, fixed, sorted, balanced, loss_proportional"):
        make_order("random")


def test_sampled_loader_serves_the_order_in_batches():
    x = torch.arange(400).float().unsqueeze(1)
    loader = SampledBatchLoader(x, LABELS, 50, order=Sorted(), seed=1)
    xs = torch.cat([b[0][:, 0] for b in loader]).long()
    assert torch.equal(xs, Sorted().indices(0, LABELS, 1)) and len(loader) == 8
    calls = []
    lp = SampledBatchLoader(x, LABELS, 100, order=LossProportional(0.0), seed=0,
                            losses=lambda: calls.append(1) or (torch.arange(400) == 3).float())
    batches = list(lp)
    assert calls == [1] and all((b[0][:, 0] == 3).all() for b in batches)  # all mass on sample 3
    with pytest.raises(ValueError, match="losses"):
        SampledBatchLoader(x, LABELS, 10, order=LossProportional())
    with pytest.raises(ValueError, match="Order"):
        SampledBatchLoader(x, LABELS, 10, order="sorted")


def test_sampled_datamodule_trains_with_lightning_and_scores_with_the_current_model():
    from accel import Classifier, fit
    x = torch.randn(200, 8)
    y = (x[:, 0] > 0).long()
    dm = SampledDataModule(x.numpy(), y.numpy(), x.numpy(), y.numpy(), batch_size=50,
                           order="loss_proportional", device="cpu")
    module = Classifier({"name": "mlp", "in_features": 8, "hidden": [8], "out_features": 2},
                        {"name": "sgd", "lr": 0.1})
    history = fit(module, dm, 2, seed=0)
    assert len(history) == 2 and history.train_loss.notna().all()
    assert SampledDataModule(x.numpy(), y.numpy(), x.numpy(), y.numpy(), order="fixed").order.name == "fixed"
