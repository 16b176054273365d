import math

import pytest

from accel.schedules import linear_scaling, lr_curve


def test_cosine_follows_its_formula():
    lr = lr_curve({"name": "cosine"}, 100, lr=1.0)
    for t in (0, 25, 50, 99):
        assert lr[t] == pytest.approx(0.5 * (1 + math.cos(math.pi * t / 100)), abs=1e-6)


def test_linear_warmup_then_constant():
    lr = lr_curve({"name": "constant", "warmup_steps": 10, "warmup_start_factor": 0.1}, 50, lr=2.0)
    assert lr[0] == pytest.approx(0.2)
    assert lr[5] == pytest.approx(2.0 * (0.1 + 0.9 * 5 / 10))
    assert lr[10:] == pytest.approx([2.0] * 40)


def test_step_decay():
    lr = lr_curve({"name": "step", "step_size": 10, "gamma": 0.5}, 30)
    assert lr[9] == 1.0 and lr[10] == 0.5 and lr[29] == 0.25


def test_bad_specs():
    with pytest.raises(ValueError, match="valid: constant, step"):
        lr_curve({"name": "triangle"}, 10)
    with pytest.raises(ValueError, match="warmup_steps"):
        lr_curve({"name": "cosine", "warmup_steps": 10}, 10)
    with pytest.raises(ValueError, match="bad arguments for schedule 'step'"):
        lr_curve({"name": "step"}, 10)


def test_linear_scaling_rule():
    assert linear_scaling(0.1, 1024, 256) == pytest.approx(0.4)
