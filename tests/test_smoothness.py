"""accel.experiments.smoothness: the landscape probed at fixed distances along the unit gradient."""
import pandas as pd
import pytest
import torch

from accel.data import TensorDataModule
from accel.experiments.smoothness import DistanceProbe, probe_at_distances, summarize
from accel.models import MLP
from accel.module import Classifier
from accel.training import fit
from conftest import Quadratic, quadratic_loss


@pytest.mark.parametrize("beta", [0.5, 3.0, 40.0])
def test_a_quadratic_gives_its_curvature_and_the_exact_loss_slope(beta):
    w0 = [1.0, -2.0, 0.5]
    q = Quadratic(beta, w0)
    ds = (0.05, 0.1, 0.2, 0.4)
    rows = probe_at_distances(q, None, ds, loss_fn=quadratic_loss)
    norm = (1.0 + 4.0 + 0.25) ** 0.5
    for r, d in zip(rows, ds):
        # along u = w/‖w‖: L(w − d u) = ½β(‖w‖ − d)², so |ΔL|/d = β‖w‖ − ½βd and ‖Δg‖/d = β
        assert r["distance"] == d and r["ratio"] == pytest.approx(beta, rel=1e-9)
        assert r["loss_slope"] == pytest.approx(beta * norm - 0.5 * beta * d, rel=1e-9)
        assert r["grad_norm"] == pytest.approx(beta * norm)
    s = summarize(pd.DataFrame(rows).assign(step=0))
    assert s.beta.iloc[0] == pytest.approx(beta) and s.loss_lipschitz.iloc[0] == pytest.approx(beta * norm - 0.025 * beta)
    assert torch.equal(q.w, torch.tensor(w0, dtype=torch.float64))      # weights restored


def test_the_same_distances_whatever_the_gradient_scale():
    """Scaling the loss scales the gradient, not where the probe goes (the point of the distances)."""
    small, large = Quadratic(1.0, [3.0, 4.0]), Quadratic(100.0, [3.0, 4.0])
    a, b = (probe_at_distances(q, None, (0.1, 0.2), loss_fn=quadratic_loss) for q in (small, large))
    assert [r["distance"] for r in a] == [r["distance"] for r in b]
    assert [r["loss"] / 100 for r in b] == pytest.approx([r["loss"] for r in a])


def test_probe_restores_batchnorm_statistics_and_rng():
    torch.manual_seed(0)
    net = MLP(6, [8, 8], 3, norm="bn").train()
    batch = (torch.randn(16, 6) * 2 + 1, torch.randint(0, 3, (16,)))
    state = {k: v.clone() for k, v in net.state_dict().items()}
    torch.manual_seed(3)
    expected = torch.rand(1)
    torch.manual_seed(3)
    rows = probe_at_distances(net, batch)
    assert torch.equal(torch.rand(1), expected) and len(rows) == 4
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in state.items())
    assert all(p.grad is None for p in net.parameters())
    with pytest.raises(ValueError, match="positive"):
        probe_at_distances(net, batch, (0.1, -1.0))


def _data():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(96, 6, generator=g), torch.randint(0, 3, (96,), generator=g)
    return TensorDataModule(x[:64].numpy(), y[:64].numpy(), x[64:].numpy(), y[64:].numpy(), batch_size=16)


def _module():
    torch.manual_seed(1)
    return Classifier(MLP(6, [8], 3, norm="bn"), {"name": "sgd", "lr": 0.1, "momentum": 0.9})


def test_distance_probe_records_the_due_steps_and_leaves_training_untouched():
    plain, probed = _module(), _module()
    fit(plain, _data(), 3, seed=0)
    probe = DistanceProbe(every=3, distances=(0.1, 0.2), until=8)
    fit(probed, _data(), 3, seed=0, callbacks=[probe])
    assert sorted(probe.frame().step.unique()) == [0, 3, 6]              # every 3 steps, none from step 8
    assert list(probe.summary().columns) == ["step", "grad_norm", "loss_lipschitz", "beta"]
    for a, b in zip(plain.parameters(), probed.parameters()):
        assert torch.equal(a, b)
    assert DistanceProbe().summary().empty
