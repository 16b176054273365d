"""Santurkar et al.'s noisy BatchNorm: the noise's law, its time variation, its determinism."""
import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn
from torch.func import functional_call, stack_module_state

from accel.models.noisy_norm import NoisyBatchNorm, hash_uniform


def _noisy(seed=3, c=4, **kw):
    return NoisyBatchNorm(nn.BatchNorm1d(c), c, seed=seed, **kw)


def test_hash_uniform_is_uniform_and_uncorrelated_across_steps():
    idx = torch.arange(20_000)
    u0 = hash_uniform(torch.tensor(7), torch.tensor(0), idx).numpy()
    u1 = hash_uniform(torch.tensor(7), torch.tensor(1), idx).numpy()
    assert 0 < u0.min() and u0.max() < 1
    assert stats.kstest(u0, "uniform").pvalue > 1e-3
    assert abs(np.corrcoef(u0, u1)[0, 1]) < 0.03
    assert abs(np.corrcoef(u0[:-1], u0[1:])[0, 1]) < 0.03


def test_forward_is_scale_times_batchnorm_plus_shift_with_the_documented_ranges():
    layer = _noisy(shift=0.7, scale=2.0)
    x = torch.randn(32, 4, 5)
    m, s = layer.noise()
    y = layer(x)
    bn = nn.BatchNorm1d(4)(x)
    expected = bn * s.float().view(1, -1, 1) + m.float().view(1, -1, 1)
    torch.testing.assert_close(y, expected)
    draws = torch.stack([torch.cat(layer.noise(t)) for t in range(2000)]).numpy()
    shifts, scales = draws[:, :4], draws[:, 4:]
    assert shifts.min() >= -0.7 and shifts.max() <= 0.7 and scales.min() >= 1 and scales.max() <= 2
    assert abs(shifts.mean()) < 0.03 and abs(shifts.var() - 0.7**2 / 3) < 0.02
    assert abs(scales.mean() - 1.5) < 0.02


def test_noise_changes_every_training_step_and_evaluation_applies_its_expectation():
    layer = _noisy()
    x = torch.randn(16, 4)
    a, b = layer(x), layer(x)
    assert int(layer.step) == 2 and not torch.allclose(a, b)
    layer.eval()
    e1, e2 = layer(x), layer(x)
    assert int(layer.step) == 2
    torch.testing.assert_close(e1, e2)
    torch.testing.assert_close(e1, layer.norm(x) * 1.25)  # the noise's expectation: E[s] = (1 + 1.5)/2, E[m] = 0


def test_same_seed_same_noise_different_seed_different_noise():
    x = torch.randn(16, 4)
    one, two, other = _noisy(seed=11), _noisy(seed=11), _noisy(seed=12)
    for _ in range(3):
        torch.testing.assert_close(one(x), two(x))
    assert not torch.allclose(one(x), other(x))


def test_seed_none_comes_from_the_global_generator():
    torch.manual_seed(5)
    a = NoisyBatchNorm(nn.BatchNorm1d(3), 3)
    torch.manual_seed(5)
    b = NoisyBatchNorm(nn.BatchNorm1d(3), 3)
    assert int(a.seed) == int(b.seed)


def test_members_of_a_vmapped_stack_each_follow_their_own_seed_and_step():
    nets = [_noisy(seed=s) for s in (1, 2)]
    singles = [_noisy(seed=s) for s in (1, 2)]
    params, buffers = stack_module_state(nets)
    base = _noisy(seed=0).to("meta")
    x = torch.randn(8, 4)

    def member(p, b, x):
        return functional_call(base, (p, b), (x,))
    for _ in range(2):
        out = torch.vmap(member, in_dims=(0, 0, None), randomness="different")(params, buffers, x)
        for k in range(2):
            torch.testing.assert_close(out[k], singles[k](x))
    assert buffers["step"].tolist() == [2, 2]


@pytest.mark.parametrize("kw, match", [(dict(shift=-0.1), "shift"), (dict(scale=0.5), "scale")])
def test_bad_ranges_are_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        _noisy(**kw)


def test_bad_feature_count_is_refused():
    with pytest.raises(ValueError, match="num_features"):
        NoisyBatchNorm(nn.BatchNorm1d(3), 0)
