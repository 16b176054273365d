"""The `accel` command: run one notebook, build the book, write the report, sweep a grid, race recipes."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from .profiles import PROFILES


def _params(pairs: Sequence[Sequence[str]] | None) -> dict[str, Any]:
    from .runner import parse_value
    return {name: parse_value(value) for name, value in (pairs or [])}


MAX_WORKERS = 256


def _count(text: str) -> int:
    """A worker/job count for argparse: an int in [1, 256]."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_WORKERS}, got {value}")
    return value


def cmd_run(args: argparse.Namespace) -> int:
    from .paths import check_output_dir
    from .runner import notebook_parameters, run_notebook
    notebook_parameters(args.notebook)  # a missing or unreadable notebook: a clear error first
    out = check_output_dir(Path(args.out or Path("runs") / Path(args.notebook).stem))
    res = run_notebook(args.notebook, out, _params(args.p), profile=args.profile, log_output=args.verbose,
                       progress=False if args.verbose or args.no_progress else None)
    print(f"executed notebook: {res.executed}\nresults record:    {res.results}\n"
          f"wall time:         {res.seconds:.1f} s")
    return 0


def cmd_book(args: argparse.Namespace) -> int:
    from .book import build
    from .paths import check_output_dir
    for folder, what in ((args.out, "build folder"), (args.cache, "cache folder")):
        if folder:
            check_output_dir(folder, what)
    if not (Path(args.root) / "_toc.yml").is_file():
        raise ValueError(f"{args.root} is not a book: it has no _toc.yml")
    build(Path(args.root), profile=args.profile, html=not args.no_html, seed=args.seed,
          out=Path(args.out) if args.out else None, jobs=args.jobs, force=args.force, only=args.only,
          cache_dir=Path(args.cache) if args.cache else None, progress=False if args.no_progress else None,
          cluster=args.cluster)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .paths import check_output_file
    from .report import find_records, write_report
    records = Path(args.records)
    if not records.exists():
        raise ValueError(f"no records folder {records}; give the folder `accel run`/`accel book` wrote into")
    if not records.is_dir():
        raise ValueError(f"{records} is a file, not a folder of results records")
    if not find_records(records):
        raise ValueError(f"no complete results records (*.json) under {records}; nothing to report "
                         "(run `accel run NOTEBOOK` or `accel book` first)")
    check_output_file(args.out, "report")
    path = write_report(records, args.out)
    print(f"report: {path}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from .grid import load_grid_file, merge_grids, parse_grid
    from .paths import check_output_dir
    from .sweep import FAILED, INTERRUPTED, LOCKED, sweep
    from .book import check_can_run
    grid = merge_grids(load_grid_file(args.grid_file) if args.grid_file else {}, parse_grid(args.grid))
    for profile in grid.get("profile", [args.profile]):
        check_can_run(profile)  # the full profile needs a GPU
    out = check_output_dir(Path(args.out or Path("runs") / f"sweep_{Path(args.notebook).stem}"))
    slurm = None
    if args.cluster and args.slurm:
        raise ValueError("give --cluster or --slurm, not both")
    if args.cluster:
        from .cluster import parse_dask_address
        parse_dask_address(args.cluster)
    if args.slurm or args.slurm_gpus is not None or args.slurm_time is not None:
        from .cluster import check_slurm_options
        slurm = check_slurm_options(args.slurm, args.slurm_gpus, args.slurm_time)
    res = sweep(args.notebook, grid, out, profile=args.profile, workers=args.workers, force=args.force,
                metric=args.metric, cluster=args.cluster, slurm=slurm)
    print(f"{len(res.runs)} runs: {res.count('done') - res.skipped} executed, {res.skipped} already done, "
          f"{res.count(FAILED)} failed, {res.count(INTERRUPTED)} interrupted"
          + (f", {res.count(LOCKED)} busy in another process" if res.count(LOCKED) else ""))
    for run in res.runs:
        s = res.status.get(run.id, {})
        if s.get("status") == LOCKED:
            print(f"  busy: {run.params} -> {s['error']}")
        elif s.get("status") in (FAILED, INTERRUPTED):
            where = s.get("failed_notebook") or s.get("kernel_log")
            print(f"  {s['status']}: {run.params} -> {s['error']}\n    see {where}")
    print(f"table:  {res.table_path}\nfigure: {res.figure_path or 'none'}\nruns:   {out / 'sweep.json'}")
    for note in res.notes:
        print(note)
    return res.exit_status


RACE_MODULE = "accel.experiments.race"


def cmd_race(argv: Sequence[str]) -> int:
    """``accel race ...``: the race is torch-side (accel.experiments), which this layer does not
    import, so it runs as its own process, ``python -m accel.experiments.race``, with the same
    arguments; its exit status is this command's (0; 1 some trial failed; 2 refused)."""
    import subprocess
    return subprocess.run([sys.executable, "-m", RACE_MODULE, *argv]).returncode


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="accel", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="execute one notebook with papermill")
    run.add_argument("notebook")
    run.add_argument("--profile", choices=PROFILES, default="cpu")
    run.add_argument("-p", nargs=2, action="append", metavar=("NAME", "VALUE"),
                     help="set a parameter of the notebook's parameters cell (repeatable)")
    run.add_argument("--out", help="output folder (default runs/<notebook>)")
    run.add_argument("-v", "--verbose", action="store_true", help="stream the notebook's output")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.set_defaults(func=cmd_run)

    book = sub.add_parser("book", help="execute every notebook of _toc.yml and build the HTML book")
    book.add_argument("--profile", choices=PROFILES, default="cpu")
    book.add_argument("--root", default=".")
    book.add_argument("--out", help="build folder (default _build)")
    book.add_argument("--seed", type=int)
    book.add_argument("--no-html", action="store_true", help="execute only")
    book.add_argument("--jobs", type=_count, help="chapters executed at once (default: the number of cores)")
    book.add_argument("--force", action="store_true", help="re-execute every chapter, ignoring the cache")
    book.add_argument("--only", action="append", metavar="CHAPTER",
                      help="execute only this chapter (repeatable); the others come from the cache")
    book.add_argument("--cache", help="execution cache folder (default <build folder>/cache)")
    book.add_argument("--no-progress", action="store_true", help="no progress bar (lines only)")
    book.add_argument("--cluster", metavar="dask://HOST:PORT",
                      help="execute the chapters on this Dask scheduler (build folder shared); needs .[cluster]")
    book.set_defaults(func=cmd_book)

    report = sub.add_parser("report", help="write the reproducibility report from results records")
    report.add_argument("records", help="folder searched for results records (*.json)")
    report.add_argument("--out", default="_build/report.md",
                        help="the page to write (default _build/report.md; the book build writes its own)")
    report.set_defaults(func=cmd_report)

    sweep = sub.add_parser("sweep", help="execute one notebook over a grid of parameters, in parallel",
                           description="Run NOTEBOOK once per combination of the grid; rerunning resumes. "
                                       "Exit status: the number of runs that failed (at most 100).")
    sweep.add_argument("notebook")
    sweep.add_argument("--grid", action="append", metavar="NAME=V1,V2",
                       help="a parameter and its values (repeatable; values are Python literals or strings)")
    sweep.add_argument("--grid-file", help="YAML mapping NAME: [values]; --grid entries override it")
    sweep.add_argument("--profile", choices=PROFILES, default="cpu")
    sweep.add_argument("--workers", type=_count, default=1, help="parallel worker processes (default 1)")
    sweep.add_argument("--out", help="output folder (default runs/sweep_<notebook>)")
    sweep.add_argument("--force", action="store_true", help="rerun combinations that are already done")
    sweep.add_argument("--metric", help="metric of the summary figure (default: the first recorded)")
    sweep.add_argument("--cluster", metavar="dask://HOST:PORT",
                       help="run each combination on this Dask scheduler (workers: --nthreads 1, "
                            "the output folder on a shared filesystem); needs .[cluster]")
    sweep.add_argument("--slurm", metavar="PARTITION", help="run the grid as one SLURM array job (submitit)")
    sweep.add_argument("--slurm-gpus", type=int, metavar="N", help="GPUs per run with --slurm (default 0)")
    sweep.add_argument("--slurm-time", type=int, metavar="MIN", help="time limit per run with --slurm (default 60)")
    sweep.set_defaults(func=cmd_sweep)

    sub.add_parser("race", add_help=False,
                   help="time to target of training recipes on fixed workloads, after AlgoPerf "
                        "(accel race --recipe my_recipe.yml; accel race --help for its options)")
    sub.add_parser("check-html", add_help=False,
                   help="open every page of a built book in headless Chromium, network off, and list "
                        "what a reader would see broken (accel check-html _build/html; --help for options)")

    return parser


def _split_params(argv: list[str]) -> tuple[list[str], list[list[str]]]:
    """Take ``-p NAME VALUE`` out of ``argv`` before argparse, which would read a VALUE such as
    ``-1e-3`` or ``-inf`` as an option and answer "expected 2 arguments"."""
    rest, pairs, i = [], [], 0
    while i < len(argv):
        if argv[i] == "-p" and i + 2 < len(argv) and not argv[i + 1].startswith("-"):
            pairs.append([argv[i + 1], argv[i + 2]])
            i += 3
        else:
            rest.append(argv[i])
            i += 1
    return rest, pairs


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pairs: list[list[str]] = []
    if argv[:1] == ["race"]:  # its options are the race module's own (accel race --help)
        return cmd_race(argv[1:])
    if argv[:1] == ["check-html"]:  # accel.repro.browser's own options
        from .browser import main as check_html
        try:
            return check_html(argv[1:])
        except (FileNotFoundError, NotADirectoryError, RuntimeError) as err:
            print(f"accel check-html: error: {err}", file=sys.stderr)
            return 2
    if argv[:1] == ["run"]:
        argv, pairs = _split_params(argv)
    args = build_parser().parse_args(argv)
    if pairs:
        args.p = [*(args.p or []), *pairs]
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError) as err:
        print(f"accel: error: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:
        print(f"accel: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("accel: interrupted; finished runs are kept, rerun the same command to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
