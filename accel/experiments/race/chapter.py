"""The race chapter's helpers: the book's recipes, a race of all of them, and the ruleset at a smaller budget.

- :func:`book_recipes` loads the recipes that ship in ``recipes/`` (every optimizer of the
  optimizers and recent-methods chapters with its best schedule);
- :func:`race_all` races each of them on the same workloads (cached under one folder);
- :func:`with_trials` rescores a race as if each study had run only its first ``k`` trials
  (the first ``k`` points of a study's Sobol sequence do not depend on how many follow, so
  a race of ``N`` trials per study contains the race of every ``k <= N``);
- :func:`study_steps` gives each study's time to target with misses censored at the step
  budget (a lower bound), the samples the chapter's t-tests compare;
- :func:`profile_frame` is the tidy table of performance profiles for a figure;
- :func:`kendall_tau` compares two rankings;
- :func:`training_code_hash` names the trial cache after the code a trial runs and the pins.
"""
from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from . import scoring
from .race import RaceResult, race_many, workload_times
from .recipes import Recipe, load_recipe

RECIPES_DIR = Path(__file__).with_name("recipes")
BOOK_RECIPES = ("nadamw_cosine", "adamw_cosine", "adam_cosine", "nesterov_cosine", "heavy_ball_cosine",
                "sgd_cosine", "rmsprop_cosine", "adagrad_cosine", "adadelta_cosine", "radam_cosine",
                "adamw_wsd", "adamw_ema", "schedule_free_adamw", "muon_adamw", "soap_cosine",
                "adam_mini_cosine", "shampoo_cosine")
# The test workload's targets (tests and the smoke profile only): every recipe can reach them.
TOY_TARGETS = {"toy_blobs": {v: {"target_error": 0.02, "budget_steps": 54} for v in ("base", "heldout")}}


def book_recipes(names: Sequence[str] = BOOK_RECIPES) -> dict[str, Recipe]:
    """The packaged recipes by name; an unknown name lists the ones there are."""
    known = sorted(p.stem for p in RECIPES_DIR.glob("*.yml"))
    bad = [n for n in names if n not in known]
    if bad:
        raise ValueError(f"unknown recipe(s) {bad}; the packaged ones: {', '.join(known)}")
    return {n: load_recipe(RECIPES_DIR / f"{n}.yml") for n in names}


def race_all(recipes: Mapping[str, Recipe], workloads: Sequence[str], targets: Mapping[str, Any], out: str | Path,
             *, trials: int, studies: int, seed: int = 0, workers: int = 1,
             progress: Callable[[int, int], None] | None = None) -> dict[str, RaceResult]:
    """Race every recipe, their trials in one pool (cached under ``out``; a rerun resumes)."""
    for name, r in recipes.items():
        if r.name != name:
            raise ValueError(f"recipe {r.name!r} is filed under another name, {name!r}")
    return race_many(list(recipes.values()), workloads, targets, out, trials=trials, studies=studies, seed=seed,
                     workers=workers, progress=progress)


def with_trials(result: RaceResult, k: int, study: int | None = None) -> RaceResult:
    """``result`` rescored with only the first ``k`` trials of each study (and only ``study``, if given)."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    most = int(result.trials["trial"].max()) + 1
    if k > most:
        raise ValueError(f"the race ran {most} trials per study; cannot rescore with {k}")
    keep = result.trials["trial"] < k
    if study is not None:
        if study not in set(result.trials["study"]):
            raise ValueError(f"no study {study!r}; the race ran studies {sorted(set(result.trials['study']))}")
        keep &= result.trials["study"] == study
    rows = result.trials[keep].reset_index(drop=True)
    return RaceResult(result.recipe, result.out, rows, workload_times(rows, "steps_to_target"),
                      workload_times(rows, "seconds_to_target"), result.skipped, result.failed)


def rank_of(scores: Mapping[str, float], name: str) -> int:
    """Competition rank of ``name`` by score (1 + how many scored strictly higher; ties share a rank)."""
    return 1 + sum(v > scores[name] for v in scores.values())


def scores_of(results: Mapping[str, RaceResult], key: str = "steps") -> dict[str, float]:
    """Each recipe's AlgoPerf-style score (:func:`accel.experiments.race.scoring.scores`)."""
    return scoring.scores({name: getattr(r, key) for name, r in results.items()})


def study_steps(result: RaceResult, workload: str, variant: str = "base",
                column: str = "steps_to_target") -> tuple[list[float], list[bool]]:
    """Per study, its fastest trial's time on ``workload`` and whether it missed (then: the budget, censored)."""
    rows = result.trials[(result.trials["workload"] == workload) & (result.trials["variant"] == variant)]
    if rows.empty:
        raise ValueError(f"recipe {result.recipe!r} has no {variant} trials on {workload!r}")
    values, censored = [], []
    for _, group in rows.groupby("study", sort=True):
        t = scoring.study_time(group[column])
        values.append(float(group["budget"].iloc[0]) if math.isinf(t) else float(t))
        censored.append(math.isinf(t))
    return values, censored


def times_table(results: Mapping[str, RaceResult], key: str = "steps") -> pd.DataFrame:
    """Recipes x workloads: the ruleset time (inf: missed, or voided by the held-out variant)."""
    return pd.DataFrame({name: getattr(r, key) for name, r in results.items()}).T


def profile_frame(results: Mapping[str, RaceResult], taus: Sequence[float] | np.ndarray,
                  key: str = "steps") -> pd.DataFrame:
    """Long table (recipe, tau, rho) of every recipe's performance profile."""
    ratio = scoring.ratios({name: getattr(r, key) for name, r in results.items()})
    rows = []
    for name, row in ratio.items():
        for tau, rho in zip(taus, scoring.profile(row, taus)):
            rows.append({"recipe": name, "tau": float(tau), "rho": float(rho)})
    return pd.DataFrame(rows)


def kendall_tau(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """Kendall's tau-b between two scorings of the same recipes (1: the same order; ties count as neither).

    nan when either scoring ties every pair it does not share with the other (tau-b is then undefined:
    e.g. every recipe scored the same).
    """
    if sorted(a) != sorted(b):
        raise ValueError(f"different recipes: {sorted(a)} and {sorted(b)}")
    names = sorted(a)
    concordant = discordant = ties_a = ties_b = 0
    for i, x in enumerate(names):
        for y in names[i + 1:]:
            da, db = np.sign(a[x] - a[y]), np.sign(b[x] - b[y])
            if da == 0 and db == 0:
                continue
            if da == 0:
                ties_a += 1
            elif db == 0:
                ties_b += 1
            elif da == db:
                concordant += 1
            else:
                discordant += 1
    denom = math.sqrt((concordant + discordant + ties_a) * (concordant + discordant + ties_b))
    return (concordant - discordant) / denom if denom else math.nan


PACKAGE_DIR = Path(__file__).resolve().parents[2]
NOT_TRAINING = ("chapter.py", "cli.py")  # the chapter's and the command's bookkeeping
TRAINING_CODE = ("*.py", "data/**/*.py", "models/**/*.py", "optim/**/*.py", "callbacks/**/*.py",
                 "experiments/race/**/*.py")  # targets and workload definitions are part of every trial id


PINS = PACKAGE_DIR.parent / "constraints.txt"


def training_code_hash(package_dir: str | Path = PACKAGE_DIR, pins: str | Path | None = PINS) -> str:
    """A hash of what a trial runs: the training library, the race package and the pinned versions.

    The trial cache of the chapter is keyed on it, so an edit elsewhere in ``accel`` (another
    chapter's helpers, the repro layer) does not throw finished trials away, while an edit to
    anything a trial executes, or a new pin of torch or Lightning (``constraints.txt``), does.
    """
    root = Path(package_dir)
    files = sorted({f for pattern in TRAINING_CODE for f in root.glob(pattern)
                    if f.is_file() and f.name not in NOT_TRAINING})
    digest = hashlib.sha256()
    for f in files:
        digest.update(str(f.relative_to(root)).encode())
        digest.update(f.read_bytes())
    if pins is not None and Path(pins).is_file():
        digest.update(b"pins\0" + Path(pins).read_bytes())
    return digest.hexdigest()[:12]
