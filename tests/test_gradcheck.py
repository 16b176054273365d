"""The hand-written BatchNorm: forward and backward against the math, and what gradcheck reports."""
import pytest
import torch
import torch.nn.functional as F

from accel.experiments.gradcheck import (BUGS, batch_norm, check_table, gradcheck_passes, loosest_needed,
                                         make_inputs, relative_error, rounding_floor, tolerance_ladder)


def test_forward_is_batch_norm_in_training_mode():
    x, gamma, beta = make_inputs(16, 4, torch.float64, 0)
    ref = F.batch_norm(x, None, None, gamma, beta, training=True, eps=1e-5)
    torch.testing.assert_close(batch_norm(x, gamma, beta), ref, rtol=0, atol=1e-12)


def test_the_derived_backward_equals_autograd_of_the_forward():
    x, gamma, beta = make_inputs(16, 4, torch.float64, 1)
    w = torch.randn(16, 4, dtype=torch.float64)
    ours = torch.autograd.grad((batch_norm(x, gamma, beta) * w).sum(), (x, gamma, beta))
    ref = torch.autograd.grad((F.batch_norm(x, None, None, gamma, beta, training=True, eps=1e-5) * w).sum(),
                              (x, gamma, beta))
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_the_input_gradient_sums_to_zero_per_feature():
    """y depends on x only through x − mean(x) scaled: shifting a column changes nothing."""
    x, gamma, beta = make_inputs(8, 3, torch.float64, 2)
    dx, = torch.autograd.grad((batch_norm(x, gamma, beta) * torch.randn(8, 3, dtype=torch.float64)).sum(), (x,))
    torch.testing.assert_close(dx.sum(0), torch.zeros(3, dtype=torch.float64), atol=1e-12, rtol=0)


@pytest.mark.parametrize("bug", ["mean", "variance"])
def test_each_planted_bug_changes_the_input_gradient_and_only_it(bug):
    x, gamma, beta = make_inputs(8, 3, torch.float64, 3)
    w = torch.randn(8, 3, dtype=torch.float64)
    good = torch.autograd.grad((batch_norm(x, gamma, beta) * w).sum(), (x, gamma, beta))
    bad = torch.autograd.grad((batch_norm(x, gamma, beta, bug=bug) * w).sum(), (x, gamma, beta))
    assert not torch.allclose(good[0], bad[0])
    torch.testing.assert_close(good[1], bad[1])
    torch.testing.assert_close(good[2], bad[2])


def test_float64_gradcheck_passes_the_correct_layer_and_catches_both_bugs():
    inputs = make_inputs(8, 3, torch.float64, 0)
    assert gradcheck_passes("none", inputs, eps=1e-6, atol=1e-5, rtol=1e-3)
    assert not gradcheck_passes("mean", inputs, eps=1e-6, atol=1e-5, rtol=1e-3)
    assert not gradcheck_passes("variance", inputs, eps=1e-6, atol=1e-5, rtol=1e-3)


def test_relative_errors_separate_in_float64_and_drown_in_float32_rounding():
    d64 = make_inputs(8, 3, torch.float64, 0)
    d32 = make_inputs(8, 3, torch.float32, 0)
    assert relative_error("none", d64, eps=1e-6) < 1e-8
    assert relative_error("variance", d64, eps=1e-6) > 1e-3
    assert relative_error("none", d32, eps=1e-6) > 1e-2  # rounding of float32 differences


def test_rounding_floor_formula():
    assert rounding_floor(torch.float64, 1e-6) == pytest.approx(2.0 ** -53 / 1e-6)
    assert rounding_floor(torch.float32, 1e-3) == pytest.approx(2.0 ** -24 / 1e-3)
    with pytest.raises(ValueError, match="positive"):
        rounding_floor(torch.float32, 0)


def test_check_table_has_one_row_per_setting_bug_and_seed():
    table = check_table({"f64": {"dtype": torch.float64}}, [0, 1], n=6, c=2)
    assert len(table) == 2 * len(BUGS) and set(table.bug) == set(BUGS)
    assert table.query("bug == 'none'").passed.all() and not table.query("bug != 'none'").passed.any()
    with pytest.raises(ValueError, match="needs dtype"):
        check_table({"bad": {"eps": 1e-3}}, [0])


def test_bad_inputs():
    x, gamma, beta = make_inputs(4, 2, torch.float64, 0)
    with pytest.raises(ValueError, match="valid: none, mean, variance"):
        batch_norm(x, gamma, beta, bug="sign")
    with pytest.raises(ValueError, match="N >= 2"):
        batch_norm(x[:1], gamma, beta)
    with pytest.raises(ValueError, match="eps"):
        batch_norm(x, gamma, beta, eps=0.0)


def test_a_tolerance_loose_enough_for_float32_at_the_default_eps_lets_the_bugs_through():
    ladder = tolerance_ladder(torch.float32, 1e-6, [1.0, 1e-2], [0, 1], n=8, c=3)
    assert ladder.tol.tolist()[0] == 1e-2  # sorted ascending
    tol = loosest_needed(ladder)
    assert tol == 1.0
    at = ladder[ladder.tol == tol].set_index("bug").passed
    assert at["none"] == 2 and at["variance"] > 0
    assert loosest_needed(ladder[ladder.tol < 1]) == float("inf")
    with pytest.raises(ValueError, match="positive"):
        tolerance_ladder(torch.float32, 1e-6, [0.0], [0])
