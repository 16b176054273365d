"""Each schedule against its closed-form formula at its key steps (lr = 1 unless stated)."""
import math

import pytest

from accel.schedules import (SCHEDULES, epochs_to_steps, linear_scaling, lr_curve, schedule_arguments,
                             to_steps)


def cos_anneal(start: float, end: float, frac: float) -> float:
    """end + (start − end)(1 + cos(π frac)) / 2: the cosine curve of SGDR and one-cycle."""
    return end + (start - end) * (1 + math.cos(math.pi * frac)) / 2


def test_every_schedule_has_a_test():
    tested = {"constant", "step", "multistep", "exponential", "linear", "piecewise", "cosine", "sgdr",
              "cyclic", "one_cycle", "spike", "wsd"}
    assert set(SCHEDULES) == tested


def test_spike():
    lr = lr_curve({"name": "spike", "start": 5, "length": 3, "factor": 40.0}, 12, lr=0.1)
    assert lr == pytest.approx([0.1] * 5 + [4.0] * 3 + [0.1] * 4)
    with pytest.raises(ValueError, match="length >= 1"):
        lr_curve({"name": "spike", "start": 5, "length": 0, "factor": 40.0}, 12)


def test_constant():
    assert lr_curve({"name": "constant"}, 20, lr=0.3) == pytest.approx([0.3] * 20)


def test_step_decay():
    lr = lr_curve({"name": "step", "step_size": 10, "gamma": 0.5}, 30)
    assert lr[0] == 1.0 and lr[9] == 1.0 and lr[10] == 0.5 and lr[19] == 0.5 and lr[29] == 0.25


def test_multistep():
    lr = lr_curve({"name": "multistep", "milestones": [5, 12], "gamma": 0.1}, 20, lr=2.0)
    for t, n in [(0, 0), (4, 0), (5, 1), (11, 1), (12, 2), (19, 2)]:
        assert lr[t] == pytest.approx(2.0 * 0.1 ** n)


def test_exponential():
    lr = lr_curve({"name": "exponential", "gamma": 0.9}, 30)
    for t in (0, 1, 7, 29):
        assert lr[t] == pytest.approx(0.9 ** t)


def test_linear_decay():
    lr = lr_curve({"name": "linear", "end_factor": 0.1}, 50, lr=1.0)
    for t in (0, 10, 25, 49):
        assert lr[t] == pytest.approx(1 + (0.1 - 1) * t / 50)


def test_piecewise_constant_linear_constant():
    # 100 steps: constant 20 steps, linear decay over 60 steps to 0.1, then constant 0.1.
    lr = lr_curve({"name": "piecewise", "hold": 0.2, "decay": 0.6, "end_factor": 0.1}, 100)
    assert lr[:20] == pytest.approx([1.0] * 20)
    for t in (20, 35, 50, 79):
        assert lr[t] == pytest.approx(1 + (0.1 - 1) * (t - 20) / 60)
    assert lr[80:] == pytest.approx([0.1] * 20)


def test_cosine_follows_its_formula():
    lr = lr_curve({"name": "cosine"}, 100, lr=1.0)
    for t in (0, 25, 50, 99):
        assert lr[t] == pytest.approx(0.5 * (1 + math.cos(math.pi * t / 100)), abs=1e-6)


def test_cosine_eta_min():
    lr = lr_curve({"name": "cosine", "eta_min": 0.1}, 40)
    for t in (0, 10, 20, 39):
        assert lr[t] == pytest.approx(cos_anneal(1.0, 0.1, t / 40))


def test_sgdr_restarts():
    lr = lr_curve({"name": "sgdr", "T_0": 10, "T_mult": 1, "eta_min": 0.0}, 30)
    for t in (0, 5, 9, 10, 15, 20, 29):
        assert lr[t] == pytest.approx(cos_anneal(1.0, 0.0, (t % 10) / 10), abs=1e-9)
    assert lr[10] == pytest.approx(1.0) and lr[20] == pytest.approx(1.0)


def test_sgdr_growing_periods():
    # T_mult = 2: cycles of 4, 8, 16 steps starting at 0, 4, 12.
    lr = lr_curve({"name": "sgdr", "T_0": 4, "T_mult": 2}, 28)
    for t, (start, period) in {0: (0, 4), 3: (0, 4), 4: (4, 8), 8: (4, 8), 11: (4, 8), 12: (12, 16),
                               20: (12, 16), 27: (12, 16)}.items():
        assert lr[t] == pytest.approx(cos_anneal(1.0, 0.0, (t - start) / period), abs=1e-9)


def test_cyclic_triangular():
    lr = lr_curve({"name": "cyclic", "base_lr": 0.1, "step_size_up": 5}, 25, lr=1.0)

    def triangle(t):  # Smith 2017, eq. for the triangular policy
        cycle = math.floor(1 + t / 10)
        x = abs(t / 5 - 2 * cycle + 1)
        return 0.1 + (1.0 - 0.1) * max(0.0, 1 - x)

    for t in (0, 2, 5, 7, 10, 15, 20, 24):
        assert lr[t] == pytest.approx(triangle(t))
    assert lr[5] == pytest.approx(1.0) and lr[10] == pytest.approx(0.1)


def test_one_cycle():
    total, pct, div, final = 100, 0.3, 25.0, 1e4
    lr = lr_curve({"name": "one_cycle", "pct_start": pct, "div_factor": div, "final_div_factor": final},
                  total, lr=1.0)
    peak = pct * total - 1  # torch's end of phase 1
    start, end = 1.0 / div, 1.0 / div / final
    assert lr[0] == pytest.approx(start)
    assert lr[29] == pytest.approx(1.0)
    for t in (10, 20):
        assert lr[t] == pytest.approx(cos_anneal(start, 1.0, t / peak))
    for t in (50, 80, 99):
        assert lr[t] == pytest.approx(cos_anneal(1.0, end, (t - peak) / (total - 1 - peak)))
    assert lr[99] == pytest.approx(end)


def test_linear_warmup_then_constant():
    lr = lr_curve({"name": "constant", "warmup_steps": 10, "warmup_start_factor": 0.1}, 50, lr=2.0)
    assert lr[0] == pytest.approx(0.2)
    assert lr[5] == pytest.approx(2.0 * (0.1 + 0.9 * 5 / 10))
    assert lr[10:] == pytest.approx([2.0] * 40)


def test_warmup_then_cosine():
    lr = lr_curve({"name": "cosine", "warmup_steps": 20, "warmup_start_factor": 0.01}, 120)
    for t in (0, 10, 19):
        assert lr[t] == pytest.approx(0.01 + 0.99 * t / 20)
    for t in (20, 45, 70, 119):
        assert lr[t] == pytest.approx(cos_anneal(1.0, 0.0, (t - 20) / 100), abs=1e-9)


@pytest.mark.parametrize("name,args", [
    ("step", {"step_size": 10}), ("exponential", {"gamma": 0.97}), ("linear", {}), ("piecewise", {}),
    ("sgdr", {"T_0": 20}), ("cyclic", {"base_lr": 0.1, "step_size_up": 10}), ("one_cycle", {}),
    ("multistep", {"milestones": [30, 60]}),
])
def test_warmup_then_any_schedule(name, args):
    """Warm-up ramps linearly to the schedule's first value, then the schedule runs as if it started there."""
    warm = lr_curve({"name": name, "warmup_steps": 10, **args}, 100)
    plain = lr_curve({"name": name, **args}, 90)
    assert warm[:10] == pytest.approx([plain[0] * (1e-3 + (1 - 1e-3) * t / 10) for t in range(10)])
    assert warm[10:] == pytest.approx(plain, abs=1e-9)


def test_epoch_specs_convert_to_steps():
    assert epochs_to_steps(2, 25) == 50 and epochs_to_steps(0.5, 25) == 13
    assert epochs_to_steps([1, 2.5], 10) == [10, 25]
    spec = {"name": "multistep", "milestones_epochs": [2, 4], "warmup_epochs": 1, "steps_per_epoch": 10}
    assert to_steps(spec) == {"name": "multistep", "milestones": [20, 40], "warmup_steps": 10}
    by_epochs = lr_curve({"name": "step", "step_size_epochs": 2, "gamma": 0.5}, 60, steps_per_epoch=10)
    assert by_epochs == lr_curve({"name": "step", "step_size": 20, "gamma": 0.5}, 60)
    assert lr_curve({"name": "sgdr", "T_0_epochs": 3, "steps_per_epoch": 5}, 30) == \
        lr_curve({"name": "sgdr", "T_0": 15}, 30)


def test_bad_specs():
    with pytest.raises(ValueError, match="valid: constant, step"):
        lr_curve({"name": "triangle"}, 10)
    with pytest.raises(ValueError, match="warmup_steps"):
        lr_curve({"name": "cosine", "warmup_steps": 10}, 10)
    with pytest.raises(ValueError, match=r"bad arguments for schedule 'step': missing \['step_size'\]"):
        lr_curve({"name": "step"}, 10)
    with pytest.raises(ValueError, match="unknown.*valid: T_0, T_mult, eta_min"):
        lr_curve({"name": "sgdr", "T0": 10}, 10)
    with pytest.raises(ValueError, match="needs steps_per_epoch"):
        lr_curve({"name": "step", "step_size_epochs": 2}, 10)
    with pytest.raises(ValueError, match="not both"):
        lr_curve({"name": "step", "step_size": 2, "step_size_epochs": 2, "steps_per_epoch": 3}, 10)
    with pytest.raises(ValueError, match="step_size must be a positive int"):
        lr_curve({"name": "step", "step_size": 0}, 10)
    with pytest.raises(ValueError, match="milestones must be increasing"):
        lr_curve({"name": "multistep", "milestones": [5, 3]}, 10)
    with pytest.raises(ValueError, match="valid: triangular"):
        lr_curve({"name": "cyclic", "base_lr": 0.1, "step_size_up": 2, "mode": "sine"}, 10)
    with pytest.raises(ValueError, match="hold \\+ decay"):
        lr_curve({"name": "piecewise", "hold": 0.5, "decay": 0.6}, 10)
    with pytest.raises(ValueError, match="total_steps"):
        lr_curve({"name": "cosine"}, 0)


def test_schedule_arguments_lists_required():
    assert schedule_arguments("cyclic") == {"base_lr": True, "step_size_up": True, "mode": False,
                                            "warmup_steps": False, "warmup_start_factor": False}


def test_linear_scaling_rule():
    assert linear_scaling(0.1, 1024, 256) == pytest.approx(0.4)


def wsd_closed_form(t: int, total: int, cooldown: int, shape: str, end: float = 0.0) -> float:
    """Hägele et al. 2024: 1 until T − C, then 1 − (1 − end)·x or 1 − (1 − end)·√x, x the cooldown's fraction."""
    x = max(0.0, (t - (total - cooldown)) / cooldown)
    return 1.0 - (1.0 - end) * (x if shape == "linear" else math.sqrt(x))


@pytest.mark.parametrize("shape", ["linear", "sqrt"])
def test_wsd_follows_its_closed_form(shape):
    lr = lr_curve({"name": "wsd", "cooldown_steps": 20, "cooldown": shape}, 100, lr=0.5)
    assert lr[:80] == pytest.approx([0.5] * 80)
    for t in (80, 81, 85, 90, 99):
        assert lr[t] == pytest.approx(0.5 * wsd_closed_form(t, 100, 20, shape), abs=1e-12)
    assert lr[90] == pytest.approx(0.5 * (0.5 if shape == "linear" else 1 - math.sqrt(0.5)))


def test_wsd_fraction_end_factor_and_warmup():
    lr = lr_curve({"name": "wsd", "cooldown_fraction": 0.25, "end_factor": 0.1}, 40)
    for t in (0, 29, 30, 35, 39):
        assert lr[t] == pytest.approx(wsd_closed_form(t, 40, 10, "linear", 0.1))
    # the warm-up prepends its ramp; the cooldown keeps its length at the end of the run
    warm = lr_curve({"name": "wsd", "cooldown_steps": 10, "warmup_steps": 5}, 50)
    assert warm[5:] == pytest.approx(lr_curve({"name": "wsd", "cooldown_steps": 10}, 45))
    assert warm[39] == 1.0 and warm[40] == pytest.approx(1.0) and warm[41] < 1.0


def test_wsd_branches_share_the_constant_part():
    """A WSD run of length L is the long constant run until L − C, then its own cooldown."""
    long_run = lr_curve({"name": "wsd", "cooldown_steps": 40}, 200)
    short = lr_curve({"name": "wsd", "cooldown_steps": 10}, 50)
    assert short[:40] == long_run[:40] == [1.0] * 40
    assert short[40:] == pytest.approx([wsd_closed_form(t, 50, 10, "linear") for t in range(40, 50)])


def test_wsd_bad_arguments():
    with pytest.raises(ValueError, match="valid: linear, sqrt"):
        lr_curve({"name": "wsd", "cooldown": "cosine"}, 10)
    with pytest.raises(ValueError, match="at most the schedule's 10 steps"):
        lr_curve({"name": "wsd", "cooldown_steps": 11}, 10)
    with pytest.raises(ValueError, match="cooldown_fraction"):
        lr_curve({"name": "wsd", "cooldown_fraction": 0.0}, 10)
    with pytest.raises(ValueError, match="cooldown_steps must be a positive int"):
        lr_curve({"name": "wsd", "cooldown_steps": 0}, 10)
