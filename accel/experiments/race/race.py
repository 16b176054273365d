"""A race: a recipe's trials on every workload and variant, scored by the external-tuning ruleset.

:func:`plan` turns a recipe, workloads and their targets into trial tasks (``studies`` x
``trials`` per workload and variant) and checks every trial's configuration before
anything trains. :func:`race` runs them (:mod:`accel.experiments.race.runner`: cached,
resumable; :func:`race_many` runs several recipes' trials in one pool) and scores each
workload (:mod:`accel.experiments.race.scoring`): time to target in steps and in seconds,
median over studies of the fastest trial, inf when the held-out variant misses.
:func:`compare` scores several recipes against each other: ratios to the best, performance
profiles and the AlgoPerf-style score.

Output folder: ``OUT/<recipe>/<workload>/<variant>/s<study>t<trial>/trial.json`` per
trial, ``OUT/<recipe>/trials.csv`` (one row per trial) and ``OUT/<recipe>/race.json``
(the per-workload times); :func:`compare` writes ``OUT/scores.json``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from ...atomic import write_json_atomic
from . import scoring
from .recipes import Recipe, check_config
from .runner import DONE, TrialTask, execute
from .workloads import VARIANTS, get_workload


def trial_seed(study: int, trial: int) -> int:
    return 1000 * study + trial


def plan(recipe: Recipe, workloads: Sequence[str], targets: Mapping[str, Mapping[str, Mapping[str, Any]]],
         out: str | Path, *, trials: int = 5, studies: int = 3, seed: int = 0) -> list[TrialTask]:
    """Every trial task; ``targets[workload][variant]`` has ``target_error`` and ``budget_steps``.

    Refuses (ValueError) an unknown workload, a workload without targets and any trial
    configuration the optimizer or schedule factories would refuse, before any training.
    """
    for n, what in ((trials, "trials"), (studies, "studies")):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"{what} must be a positive int, got {n!r}")
    if not workloads:
        raise ValueError("no workloads to race")
    if len(set(workloads)) < len(workloads):
        raise ValueError(f"a workload is listed twice: {list(workloads)}")
    tasks = []
    for name in workloads:
        get_workload(name)
        if name not in targets:
            raise ValueError(f"workload {name!r} has no target; targets exist for: {', '.join(targets) or 'none'}")
        for variant in VARIANTS:
            t = targets[name][variant]
            for study in range(studies):
                for k, config in enumerate(recipe.trials(trials, study, seed)):
                    check_config(config, f"recipe {recipe.name}, study {study}, trial {k}", t["budget_steps"])
                    tasks.append(TrialTask(name, variant, config, trial_seed(study, k), int(t["budget_steps"]),
                                           float(t["target_error"]),
                                           str(Path(out) / recipe.name / name / variant / f"s{study}t{k}"),
                                           {"recipe": recipe.name, "study": study, "trial": k}))
    return tasks


@dataclass
class RaceResult:
    recipe: str
    out: Path
    trials: pd.DataFrame  # one row per trial
    steps: dict[str, float]  # workload -> ruleset time to target, in steps
    seconds: dict[str, float]
    skipped: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame({"workload": list(self.steps), "steps": list(self.steps.values()),
                             "seconds": [self.seconds[w] for w in self.steps]})


def trial_rows(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for r in records:
        hist = r.get("history", [])
        rows.append({**r["labels"], "workload": r["workload"], "variant": r["variant"], "seed": r["seed"],
                     "status": r["status"], "target": r["target"], "budget": r["budget"],
                     "steps_to_target": scoring.time_to_target(hist, r["target"], "step") if r["status"] == DONE
                     else math.inf,
                     "seconds_to_target": scoring.time_to_target(hist, r["target"], "seconds")
                     if r["status"] == DONE else math.inf,
                     "best_error": min((h["error"] for h in hist if h["error"] == h["error"]), default=math.nan),
                     "resumed": bool(r.get("resumed", False)), "error": r.get("error", "")})
    return pd.DataFrame(rows)


def workload_times(rows: pd.DataFrame, column: str) -> dict[str, float]:
    """The ruleset time per workload from the trial table (held-out miss voids the workload)."""
    out = {}
    for name, group in rows.groupby("workload", sort=False):
        per_variant = {v: [list(g[column]) for _, g in group[group["variant"] == v].groupby("study")]
                       for v in VARIANTS}
        out[str(name)] = scoring.ruleset_time(per_variant["base"], per_variant["heldout"])
    return out


def race(recipe: Recipe, workloads: Sequence[str], targets: Mapping[str, Mapping[str, Mapping[str, Any]]],
         out: str | Path, *, trials: int = 5, studies: int = 3, seed: int = 0, workers: int = 1,
         force: bool = False, progress: Callable[[int, int], None] | None = None) -> RaceResult:
    """Race one recipe (see :func:`race_many`)."""
    return race_many([recipe], workloads, targets, out, trials=trials, studies=studies, seed=seed,
                     workers=workers, force=force, progress=progress)[recipe.name]


def race_many(recipes: Sequence[Recipe], workloads: Sequence[str],
              targets: Mapping[str, Mapping[str, Mapping[str, Any]]], out: str | Path, *, trials: int = 5,
              studies: int = 3, seed: int = 0, workers: int = 1, force: bool = False,
              progress: Callable[[int, int], None] | None = None) -> dict[str, RaceResult]:
    """Race every recipe, all their trials in one pool of ``workers`` processes; results by recipe name.

    Every trial of every recipe is planned (and checked) before any trains, and they share
    one pool: a pool per recipe would pay the workers' start (imports, data) once per recipe
    and leave a worker idle at the end of each.
    """
    names = [r.name for r in recipes]
    if len(set(names)) < len(names):
        raise ValueError(f"two recipes share a name: {names}")
    out = Path(out)
    planned = [plan(r, workloads, targets, out, trials=trials, studies=studies, seed=seed) for r in recipes]
    records, _ = execute([t for tasks in planned for t in tasks], workers=workers, force=force,
                         progress=progress)
    results, start = {}, 0
    for recipe, tasks in zip(recipes, planned):
        mine = records[start:start + len(tasks)]
        start += len(tasks)
        results[recipe.name] = _score(recipe, mine, sum(bool(r.get("resumed")) for r in mine), workloads,
                                      targets, out, trials, studies, seed)
    return results


def _score(recipe: Recipe, records: Sequence[dict[str, Any]], skipped: int, workloads: Sequence[str],
           targets: Mapping[str, Mapping[str, Mapping[str, Any]]], out: Path, trials: int, studies: int,
           seed: int) -> RaceResult:
    rows = trial_rows(records)
    result = RaceResult(recipe.name, out / recipe.name, rows, workload_times(rows, "steps_to_target"),
                        workload_times(rows, "seconds_to_target"), skipped,
                        [r for r in records if r["status"] != DONE])
    result.out.mkdir(parents=True, exist_ok=True)
    rows.to_csv(result.out / "trials.csv", index=False)
    write_json_atomic(result.out / "race.json", {
        "recipe": recipe.name, "trials_per_study": trials, "studies": studies, "seed": seed,
        "workloads": {w: {"steps": _json(result.steps[w]), "seconds": _json(result.seconds[w]),
                          "targets": {v: dict(targets[w][v]) for v in VARIANTS}} for w in workloads},
        "failed_trials": [{"workload": r["workload"], "variant": r["variant"], **r["labels"], "error": r["error"]}
                          for r in result.failed]})
    return result


def _json(x: float) -> float | str:
    return "inf" if math.isinf(x) else x


def compare(results: Sequence[RaceResult], out: str | Path | None = None, *, key: str = "steps",
            baseline: str | None = None, tau_max: float = scoring.TAU_MAX) -> pd.DataFrame:
    """One row per recipe: its score and, per workload, its time and ratio to the best (and speed-up)."""
    times = {r.recipe: getattr(r, key) for r in results}
    if len(times) < len(results):
        raise ValueError("two results have the same recipe name")
    ratio = scoring.ratios(times)
    score = scoring.scores(times, tau_max)
    up = scoring.speedup(times, baseline) if baseline else {}
    rows = []
    for name in times:
        row: dict[str, Any] = {"recipe": name, "score": score[name]}
        for w, t in times[name].items():
            row[f"{w}:{key}"], row[f"{w}:ratio"] = t, ratio[name][w]
            if up:
                row[f"{w}:speedup"] = up[name][w]
        rows.append(row)
    table = pd.DataFrame(rows).sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
    if out is not None:
        write_json_atomic(Path(out) / "scores.json", {
            "key": key, "tau_max": tau_max, "baseline": baseline,
            "rows": [{k: _json(v) if isinstance(v, float) else v for k, v in row.items()} for row in rows]})
    return table
