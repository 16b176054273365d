"""The race's targets, set as AlgoPerf sets them, and stored as data with how they were set.

Procedure (:func:`set_target`), per workload and per variant (the held-out variant gets its own):

1. tune each reference recipe (:data:`REFERENCE_RECIPES`: AdamW, NAdamW, Nesterov momentum,
   heavy-ball momentum, each with warm-up + cosine decay) with ``trials`` quasi-random
   (Sobol) points, each trained for the workload's ``max_steps`` with no early stop;
2. take the configuration with the lowest best validation error over all references;
3. rerun it over ``seeds`` fresh seeds; the **target** is the median of their best
   validation errors;
4. the **step budget** is 4/3 of the target-setter's steps (``max_steps``), rounded up.

The file ``targets/targets.json`` holds, per workload, either ``"status": "not yet set"``
or the target, the budget and the setting's record (reference, configuration, seeds, the
per-seed best errors, date, accel version). A workload without a target cannot be raced.
"""
from __future__ import annotations

import datetime
import json
import math
import statistics
from pathlib import Path
from typing import Any, Callable

from ...atomic import write_json_atomic
from .recipes import Recipe, recipe_from_dict
from .runner import TrialTask, execute
from .workloads import VARIANTS, WORKLOADS, get_workload

TARGETS_FILE = Path(__file__).with_name("targets") / "targets.json"
NOT_SET = "not yet set"
BUDGET_FACTOR = 4 / 3

HOW = ("Per workload and variant: tune each reference recipe (AdamW, NAdamW, Nesterov, heavy ball; "
       "warm-up 5 % + cosine) with quasi-random Sobol trials trained for the workload's max_steps; rerun the "
       "configuration with the lowest best validation error over fresh seeds; target = the median of their best "
       "validation errors; step budget = ceil(4/3 x the setter's steps). "
       "Code: accel.experiments.race.targets.set_target.")

_WARMUP_COSINE = {"schedule": {"name": "cosine"}, "tricks": {"warmup_fraction": 0.05}}
_SPACE = {"optimizer.lr": {"low": 1e-4, "high": 1e-2, "log": True},
          "optimizer.weight_decay": {"low": 1e-5, "high": 1e-2, "log": True}}
_SGD_SPACE = {"optimizer.lr": {"low": 1e-3, "high": 1.0, "log": True},
              "optimizer.weight_decay": {"low": 1e-6, "high": 1e-3, "log": True}}
REFERENCE_RECIPES: dict[str, Recipe] = {r.name: r for r in (
    recipe_from_dict({"name": "adamw", "optimizer": {"name": "adamw", "lr": 1e-3}, **_WARMUP_COSINE,
                      "search_space": _SPACE}, "reference adamw"),
    recipe_from_dict({"name": "nadamw", "optimizer": {"name": "nadam", "lr": 1e-3, "decoupled_weight_decay": True},
                      **_WARMUP_COSINE, "search_space": _SPACE}, "reference nadamw"),
    recipe_from_dict({"name": "nesterov", "optimizer": {"name": "nesterov", "lr": 0.1}, **_WARMUP_COSINE,
                      "search_space": _SGD_SPACE}, "reference nesterov"),
    recipe_from_dict({"name": "heavy_ball", "optimizer": {"name": "momentum", "lr": 0.1}, **_WARMUP_COSINE,
                      "search_space": _SGD_SPACE}, "reference heavy_ball"),
)}


def load_targets(path: str | Path = TARGETS_FILE) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no targets file {path}")
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("workloads"), dict):
        raise ValueError(f"{path}: a targets file is a mapping with a 'workloads' mapping")
    return data


def target_of(targets: dict[str, Any], workload: str) -> dict[str, dict[str, Any]]:
    """``{"base": {...}, "heldout": {...}}`` (each with ``target_error`` and ``budget_steps``) or a clear error."""
    get_workload(workload)
    entry = targets["workloads"].get(workload)
    if not entry or entry.get("status") != "set":
        set_ones = [w for w, e in targets["workloads"].items() if e.get("status") == "set"]
        raise ValueError(f"workload {workload!r} has no target yet ({(entry or {}).get('status', NOT_SET)}); "
                         f"set it first with `accel race --set-target {workload}` (trains the reference "
                         f"recipes), or race a workload that has one: {', '.join(set_ones) or 'none'}")
    if entry.get("definition") not in (None, get_workload(workload).fingerprint()):
        raise ValueError(f"workload {workload!r} changed since its target was set (definition "
                         f"{entry['definition']}, now {get_workload(workload).fingerprint()}); set it again with "
                         f"`accel race --set-target {workload}`")
    for variant in VARIANTS:
        t = entry.get(variant)
        if not isinstance(t, dict) or not isinstance(t.get("target_error"), (int, float)) \
                or not isinstance(t.get("budget_steps"), int):
            raise ValueError(f"targets of {workload!r}: variant {variant!r} needs target_error and budget_steps")
    return {v: entry[v] for v in VARIANTS}


def budget(setter_steps: int) -> int:
    """The step budget: 4/3 of the target-setter's steps, rounded up."""
    return math.ceil(BUDGET_FACTOR * setter_steps - 1e-9)


def best_error(record: dict[str, Any]) -> float:
    """The lowest validation error a trial reached (inf for a failed or diverged one)."""
    errors = [r["error"] for r in record.get("history", []) if r["error"] is not None and math.isfinite(r["error"])]
    return min(errors) if errors else math.inf


def set_target(workload: str, variant: str, out: str | Path, *, trials: int = 5, seeds: int = 3, seed: int = 0,
               references: dict[str, Recipe] | None = None, workers: int = 1,
               progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Run the procedure of the module doc for one variant; return its entry (cached trials under ``out``)."""
    w = get_workload(workload)
    references = references or REFERENCE_RECIPES
    steps = w.max_steps
    out = Path(out) / "targets" / workload / variant
    tasks = []
    for name, recipe in references.items():
        for t, config in enumerate(recipe.trials(trials, study=0, seed=seed)):
            tasks.append(TrialTask(workload, variant, config, seed=10_000 + t, budget=steps, target=None,
                                   folder=str(out / "tune" / name / f"t{t}"), labels={"reference": name, "trial": t}))
    records, _ = execute(tasks, workers=workers, progress=progress)
    best = min(records, key=best_error)
    if math.isinf(best_error(best)):
        raise RuntimeError(f"no reference trial on {workload}/{variant} produced a finite validation error")
    reruns = [TrialTask(workload, variant, best["config"], seed=20_000 + s, budget=steps, target=None,
                        folder=str(out / "seeds" / f"s{s}"), labels={"seed_index": s}) for s in range(seeds)]
    rerun_records, _ = execute(reruns, workers=workers, progress=progress)
    errors = [best_error(r) for r in rerun_records]
    return {"target_error": float(statistics.median(errors)), "budget_steps": budget(steps),
            "setter_steps": steps, "reference": best["labels"]["reference"], "config": best["config"],
            "tuning_trials_per_reference": trials, "seed_best_errors": errors,
            "tuning_best_error": best_error(best)}


def record_target(workload: str, entries: dict[str, dict[str, Any]], path: str | Path = TARGETS_FILE) -> None:
    """Write both variants' entries for ``workload`` into the targets file (atomically)."""
    from ... import __version__

    data = load_targets(path)
    data["workloads"][workload] = {"status": "set", "set_on": datetime.date.today().isoformat(),
                                   "accel_version": __version__, "definition": get_workload(workload).fingerprint(),
                                   **entries}
    write_json_atomic(path, data)


def empty_targets() -> dict[str, Any]:
    """The file's content before any target is set (how targets are set, every workload 'not yet set')."""
    return {"how": HOW,
            "references": sorted(REFERENCE_RECIPES), "budget_factor": "4/3",
            "workloads": {name: {"status": NOT_SET} for name in WORKLOADS}}
