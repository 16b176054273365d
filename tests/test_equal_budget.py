"""The equal-tuning-budget protocol (Nado et al. 2021): grids, trials, reruns of the best."""
import numpy as np

from accel.data import make_datamodule
from accel.experiments.equal_budget import lr_grid, rerun_best, tune_at_batch
from accel.experiments.large_batch import run_specs


def test_lr_grid_names_and_recipes():
    grid = lr_grid("adam", np.logspace(-3, 0, 2), 512, warmup_epochs=0.5)
    assert list(grid) == ["adam lr=0.001", "adam lr=1"]
    assert grid["adam lr=1"] == {"optimizer": {"name": "adam", "lr": 1.0}, "base_batch": 512,
                                 "warmup_epochs": 0.5}
    assert run_specs(grid["adam lr=1"], 512, 5120, 2)[0]["lr"] == 1.0   # tuned at the batch: no rescaling


def test_tune_then_rerun_best_with_the_other_seeds():
    dm = make_datamodule("digits", 256, seed=0, standardize=True)
    model = {"name": "mlp", "in_features": 64, "hidden": [8], "out_features": 10}
    grids = {"sgd": [1e-4, 0.5], "adam": [1e-5, 0.01]}
    budget = dict(batch=256, datamodule=dm, epochs=1, warmup_epochs=0.0)
    trials = tune_at_batch(model, grids, seed=0, **budget)
    assert trials["optimizer"].tolist() == ["sgd", "sgd", "adam", "adam"] and set(trials.seed) == {0}
    tuned = rerun_best(model, trials, grids, seeds=[0, 1], **budget)
    assert tuned.groupby("optimizer")["seed"].apply(sorted).to_dict() == {"adam": [0, 1], "sgd": [0, 1]}
    assert tuned.groupby("optimizer")["recipe"].nunique().eq(1).all()
    assert set(tuned.recipe) == {"sgd lr=0.5", "adam lr=0.01"}   # the tiny rates barely move in one epoch
