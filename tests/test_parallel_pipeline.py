"""Pipeline parallelism over 2 gloo processes equals one process: the same loss and gradients."""
import pytest
import torch
from torch import nn

from accel.experiments.parallel import pipeline
from accel.experiments.parallel.launch import launch
from accel.models import build_model
from accel.seeding import seed_everything


def _model() -> nn.Sequential:
    seed_everything(3)
    return pipeline.as_sequential(build_model({"name": "mlp", "in_features": 20, "hidden": [32, 32, 32],
                                               "out_features": 5}))


def _data():
    gen = torch.Generator().manual_seed(4)
    return torch.randn(24, 20, generator=gen), torch.randint(0, 5, (24,), generator=gen)


def steps_for(rank, world, model, cuts, x, y, micro):
    return [pipeline.stage_step(rank, world, model, cuts, x, y, m) for m in micro]


def test_pipeline_forward_backward_equals_single_process_for_each_micro_batch_count():
    model, (x, y) = _model(), _data()
    cuts = [pipeline.cut_before(model, nn.Linear, 3)]
    ref_loss, ref_grads = pipeline.reference_step(model, x, y)
    micro = (1, 4)
    runs = launch(steps_for, 2, (model, cuts, x, y, micro), timeout=120)  # one launch: seconds
    for i, m in enumerate(micro):
        parts = [runs[0][i], runs[1][i]]
        assert parts[0]["loss"] is None
        assert parts[1]["loss"] == pytest.approx(ref_loss, rel=1e-5)
        grads = {**parts[0]["grads"], **parts[1]["grads"]}
        assert grads.keys() == ref_grads.keys()  # every parameter on exactly one stage
        for name, g in ref_grads.items():
            torch.testing.assert_close(grads[name], g, rtol=1e-5, atol=1e-7, msg=name)
        # stage 0 sent the cut activations forward, stage 1 their gradients back: 24 × 32 floats each
        # (in m messages)
        assert parts[0]["sent"] == parts[1]["sent"] == 24 * 32 * 4


def test_split_and_cuts():
    model = _model()
    stages = pipeline.split(model, [4, 7])
    assert [len(s) for s in stages] == [4, 3, len(model) - 7]
    assert sum(len(s) for s in stages) == len(model)
    assert pipeline.cut_before(model, nn.Linear, 2) == 4
    with pytest.raises(ValueError, match="increasing"):
        pipeline.split(model, [7, 4])
    with pytest.raises(ValueError, match="increasing"):
        pipeline.split(model, [0])
    with pytest.raises(ValueError, match="cannot cut"):
        pipeline.cut_before(model, nn.Linear, 9)
    with pytest.raises(ValueError, match="equal micro-batches"):
        pipeline.micro_batches(torch.zeros(10, 2), 3)
    names = pipeline.stage_names(model, [4], 1)
    assert names == {"0.weight": "4.weight", "0.bias": "4.bias", "3.weight": "7.weight", "3.bias": "7.bias",
                     "6.weight": "10.weight", "6.bias": "10.bias"}


def test_a_cnn_flattens_into_layers_that_compute_the_same_function():
    seed_everything(0)
    cnn = build_model({"name": "cnn2d", "in_channels": 1, "channels": [4, 8], "num_classes": 3, "kernel_size": 3})
    flat = pipeline.as_sequential(cnn)
    x = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(flat(x), cnn(x))
    shapes = pipeline.cut_shapes(pipeline.split(flat, [pipeline.cut_before(flat, nn.Conv2d, 2)]), x)
    assert shapes == [torch.Size([2, 4, 4, 4])]
    with pytest.raises(ValueError, match="cannot flatten"):
        pipeline.as_sequential(nn.LSTM(2, 2))
