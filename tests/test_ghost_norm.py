import pytest
import torch
from torch import nn

from accel.models import CNN1d, MLP, GhostBatchNorm, make_norm


def _reference(x: torch.Tensor, k: int) -> tuple[torch.Tensor, nn.BatchNorm1d]:
    """Each ghost batch through its own plain BatchNorm (train mode)."""
    outs = []
    for chunk in x.split(k):
        bn = nn.BatchNorm1d(x.shape[1]).train()
        outs.append(bn(chunk))
    return torch.cat(outs), bn


@pytest.mark.parametrize("shape", [(32, 6), (32, 6, 5)])
@pytest.mark.parametrize("k", [2, 4, 16])
def test_each_ghost_batch_is_normalized_like_batchnorm_on_it_alone(shape, k):
    torch.manual_seed(0)
    x = torch.randn(*shape) * 3 + 1
    gbn = GhostBatchNorm(shape[1], ghost_size=k).train()
    want, _ = _reference(x, k)
    assert torch.allclose(gbn(x), want, atol=1e-5)


def test_ghost_size_equal_to_batch_is_plain_batchnorm_including_running_stats():
    torch.manual_seed(0)
    x = torch.randn(16, 4, 7) * 2 + 3
    bn, gbn = nn.BatchNorm1d(4), GhostBatchNorm(4, ghost_size=16)
    assert torch.allclose(gbn(x), bn(x), atol=1e-6)
    assert torch.allclose(gbn.running_mean, bn.running_mean)
    assert torch.allclose(gbn.running_var, bn.running_var)
    assert gbn.num_batches_tracked.item() == 1


def test_running_stats_average_the_ghost_statistics():
    torch.manual_seed(0)
    x = torch.randn(8, 3) * 2 + 5
    gbn = GhostBatchNorm(3, ghost_size=4, momentum=1.0)  # momentum 1: running = this step's value
    gbn(x)
    ghosts = x.view(2, 4, 3)
    assert torch.allclose(gbn.running_mean, ghosts.mean(1).mean(0))
    assert torch.allclose(gbn.running_var, ghosts.var(1, unbiased=True).mean(0))
    gbn.eval()  # eval mode uses the running statistics, like BatchNorm
    want = (x - gbn.running_mean) / torch.sqrt(gbn.running_var + gbn.eps)
    assert torch.allclose(gbn(x), want, atol=1e-5)


def test_gradients_flow_through_the_ghost_statistics():
    x = torch.randn(8, 3, requires_grad=True)
    GhostBatchNorm(3, ghost_size=4)(x).pow(3).sum().backward()
    ref = x.detach().clone().requires_grad_(True)
    _reference(ref, 4)[0].pow(3).sum().backward()
    assert torch.allclose(x.grad, ref.grad, atol=1e-4)


def test_bad_ghost_sizes_raise():
    with pytest.raises(ValueError, match="ghost_size"):
        GhostBatchNorm(4, ghost_size=1)
    with pytest.raises(ValueError, match="multiple of ghost_size=4"):
        GhostBatchNorm(4, ghost_size=4)(torch.randn(10, 4))
    with pytest.raises(ValueError, match="norm='bn' only"):
        make_norm("ln", 4, ghost_size=4)


def test_models_take_a_ghost_size():
    for net in (MLP(40, [16], 10, norm="bn", ghost_size=4), CNN1d(1, [8], 10, norm="bn", ghost_size=4)):
        assert any(isinstance(m, GhostBatchNorm) and m.ghost_size == 4 for m in net.modules())
        assert net(torch.randn(8, 40)).shape == (8, 10)
