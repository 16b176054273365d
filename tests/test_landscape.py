import pytest
import torch
from torch import nn

from accel.callbacks import LandscapeProbe, probe_landscape
from accel.callbacks.landscape import summarize
from accel.data import TensorDataModule
from accel.models import MLP
from accel.module import Classifier
from accel.training import fit
from conftest import Quadratic, quadratic_loss


@pytest.mark.parametrize("beta", [0.5, 3.0, 40.0])
def test_smoothness_of_a_quadratic_is_its_curvature(beta):
    q = Quadratic(beta, [1.0, -2.0, 0.5])
    rows = probe_landscape(q, None, lr=0.01, multipliers=(0.5, 1, 2, 4), loss_fn=quadratic_loss)
    ratios = [r["ratio"] for r in rows if r["multiplier"] > 0]
    assert ratios == pytest.approx([beta] * 4, rel=1e-9)
    # the loss along w − cηβw is ½β‖w‖²(1 − cηβ)²: check the recorded values against it
    norm2 = 1.0 + 4.0 + 0.25
    for r in rows:
        assert r["loss"] == pytest.approx(0.5 * beta * norm2 * (1 - r["multiplier"] * 0.01 * beta) ** 2)
    import pandas as pd
    s = summarize(pd.DataFrame(rows).assign(step=0))
    assert s["beta"].iloc[0] == pytest.approx(beta)
    assert torch.equal(q.w, torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64))


def test_smoothness_is_bounded_by_the_largest_curvature():
    q = Quadratic(1.0, [1.0, 1.0])
    curv = torch.tensor([1.0, 10.0], dtype=torch.float64)
    rows = probe_landscape(q, None, lr=0.01, loss_fn=lambda m, b: 0.5 * (curv * m.w ** 2).sum())
    beta = max(r["ratio"] for r in rows if r["multiplier"] > 0)
    # along g = (1, 10): ‖Hg‖/‖g‖ = √(1 + 10⁴)/√(1 + 10²)
    assert beta == pytest.approx((1 + 1e4) ** 0.5 / (1 + 1e2) ** 0.5)


def _bn_net_and_batch():
    torch.manual_seed(0)
    net = MLP(6, [8, 8], 3, norm="bn", activation="relu")
    net.add_module("drop", nn.Dropout(0.5))  # consumes RNG in train mode
    net.train()
    return net, (torch.randn(16, 6) * 2 + 1, torch.randint(0, 3, (16,)))


def test_probe_restores_weights_buffers_grads_and_rng():
    net, batch = _bn_net_and_batch()
    net(batch[0]).sum().backward()  # some stale gradients the probe must not touch
    before = {k: v.clone() for k, v in net.state_dict().items()}
    grads = [p.grad.clone() for p in net.parameters()]
    rng = torch.get_rng_state()
    rows = probe_landscape(net, batch, lr=0.5)
    assert len(rows) == 5 and rows[-1]["loss"] != rows[0]["loss"]
    after = net.state_dict()
    assert before.keys() == after.keys()
    for k in before:
        assert torch.equal(before[k], after[k]), k  # running_mean/var and num_batches_tracked included
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, net.parameters()))
    assert torch.equal(rng, torch.get_rng_state())


def test_probe_does_not_change_training():
    torch.manual_seed(0)
    x, y = torch.randn(96, 10), torch.randint(0, 3, (96,))
    data = TensorDataModule(x.numpy(), y.numpy(), x.numpy(), y.numpy(), batch_size=32, seed=0)

    def run(callbacks):
        torch.manual_seed(1)
        module = Classifier(MLP(10, [16, 16], 3, norm="bn"), {"name": "sgd", "lr": 0.1, "momentum": 0.9})
        fit(module, data, 2, seed=1, callbacks=callbacks)
        return module.state_dict()

    probe = LandscapeProbe(every=2)
    plain, probed = run([]), run([probe])
    for k in plain:
        assert torch.equal(plain[k], probed[k]), k
    summary = probe.summary()
    assert list(summary["step"]) == [0, 2, 4]
    assert (summary["beta"] > 0).all() and (summary["loss_range"] >= 0).all()


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="every"):
        LandscapeProbe(every=0)
    net, batch = _bn_net_and_batch()
    with pytest.raises(ValueError, match="positive"):
        probe_landscape(net, batch, lr=0.0)
