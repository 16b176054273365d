"""The command behind ``accel race`` (run as ``python -m accel.experiments.race`` by it).

``accel race --recipe my_recipe.yml [--recipe other.yml ...] [--workload NAME ...] [--out DIR]
[--trials N --studies M] [--workers W] [--baseline NAME]`` loads and checks every recipe,
checks that every workload has a target and plans every trial (all before any training),
then races each recipe, printing its per-workload times to target and, for two recipes or
more, the ratios and scores. ``--list`` lists the workloads and their targets;
``--set-target NAME`` sets a workload's target by the procedure of
:mod:`accel.experiments.race.targets` and records it in the targets file.
Exit status: 0, 1 when some trial failed, 2 for a refused command.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from .targets import TARGETS_FILE


def build_parser(prog: str = "accel race") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Time to target of training recipes on fixed small "
                                "workloads, after MLCommons AlgoPerf (external-tuning ruleset).")
    p.add_argument("--recipe", action="append", metavar="YAML", help="a recipe file (repeatable)")
    p.add_argument("--workload", action="append", metavar="NAME",
                   help="race only this workload (repeatable; default: every workload with a target)")
    p.add_argument("--out", default="runs/race", help="output folder; finished trials there are reused")
    p.add_argument("--trials", type=int, default=5, help="quasi-random trials per study (default 5)")
    p.add_argument("--studies", type=int, default=3, help="independent studies (default 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the Sobol search (default 0)")
    p.add_argument("--workers", type=int, default=1, help="trials run at once, in worker processes (default 1)")
    p.add_argument("--force", action="store_true", help="rerun trials that are already finished")
    p.add_argument("--baseline", metavar="RECIPE", help="a raced recipe's name to report speed-ups against")
    p.add_argument("--targets", default=str(TARGETS_FILE), help="targets file (default: the package's)")
    p.add_argument("--list", action="store_true", help="list the workloads and their targets, and exit")
    p.add_argument("--set-target", metavar="NAME", help="set this workload's target (trains the references)")
    p.add_argument("--setter-trials", type=int, default=5, help="with --set-target: trials per reference")
    p.add_argument("--setter-seeds", type=int, default=3, help="with --set-target: seeds of the rerun")
    return p


def _fmt(x: float) -> str:
    return "inf (missed)" if x == float("inf") else f"{x:.4g}"


def _list(targets: dict) -> int:
    from .workloads import WORKLOADS
    for name, w in WORKLOADS.items():
        entry = targets["workloads"].get(name, {})
        if entry.get("status") == "set":
            t = ", ".join(f"{v}: error <= {entry[v]['target_error']:.4f} in {entry[v]['budget_steps']} steps"
                          for v in ("base", "heldout"))
        else:
            t = entry.get("status", "not yet set")
        print(f"{name:14s} {w.description}\n{'':14s} target: {t}")
    return 0


def _set_target(args: argparse.Namespace) -> int:
    from .targets import record_target, set_target
    entries = {v: set_target(args.set_target, v, args.out, trials=args.setter_trials, seeds=args.setter_seeds,
                             seed=args.seed, workers=args.workers) for v in ("base", "heldout")}
    record_target(args.set_target, entries, args.targets)
    for v, e in entries.items():
        print(f"{args.set_target} ({v}): target error {e['target_error']:.4f} in {e['budget_steps']} steps "
              f"(set by {e['reference']}; seed best errors {e['seed_best_errors']})")
    print(f"recorded in {args.targets}")
    return 0


def run(args: argparse.Namespace) -> int:
    from .recipes import load_recipe
    from .targets import load_targets, target_of

    targets = load_targets(args.targets)
    if args.list:
        return _list(targets)
    if args.set_target:
        return _set_target(args)
    if not args.recipe:
        raise ValueError("give a recipe: accel race --recipe my_recipe.yml (see accel/experiments/race/recipes/)")
    for n, what in ((args.trials, "--trials"), (args.studies, "--studies"), (args.workers, "--workers")):
        if n < 1:
            raise ValueError(f"{what} must be at least 1, got {n}")
    recipes = [load_recipe(p) for p in args.recipe]  # every recipe checked before any training
    names = [r.name for r in recipes]
    if len(set(names)) < len(names):
        raise ValueError(f"two recipes share a name: {names}")
    if args.baseline and args.baseline not in names:
        raise ValueError(f"--baseline {args.baseline!r} is not one of the raced recipes: {', '.join(names)}")
    workloads = args.workload or [w for w, e in targets["workloads"].items() if e.get("status") == "set"]
    if not workloads:
        raise ValueError(f"no workload has a target yet ({args.targets}); set one with "
                         "`accel race --set-target NAME` (see `accel race --list`)")
    chosen = {w: target_of(targets, w) for w in workloads}
    from .race import compare, race_many
    # Every trial's configuration is checked before any training; all recipes share one pool.
    raced = race_many(recipes, workloads, chosen, args.out, trials=args.trials, studies=args.studies,
                      seed=args.seed, workers=args.workers, force=args.force,
                      progress=lambda i, n: print(f"\r  {i}/{n} trials", end="", file=sys.stderr, flush=True))
    print(file=sys.stderr)
    results = list(raced.values())
    for recipe, res in zip(recipes, results):
        print(f"recipe {recipe.name}: {len(res.trials)} trials ({res.skipped} cached), {len(res.failed)} failed")
        for w in workloads:
            print(f"  {w:14s} steps to target {_fmt(res.steps[w])}, seconds {_fmt(res.seconds[w])}")
        for f in res.failed:
            print(f"  failed: {f['workload']}/{f['variant']} study {f['labels']['study']} trial "
                  f"{f['labels']['trial']}: {f.get('error')}")
        print(f"  trials: {res.out / 'trials.csv'}")
    if len(results) > 1:
        table = compare(results, args.out, baseline=args.baseline)
        print(table.to_string(index=False))
        print(f"scores: {Path(args.out) / 'scores.json'}")
    return 1 if any(r.failed for r in results) else 0


def main(argv: Sequence[str] | None = None, prog: str = "accel race") -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        return run(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"accel race: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("accel race: interrupted; finished trials are kept, rerun the same command to resume",
              file=sys.stderr)
        return 130
