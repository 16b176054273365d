"""The `accel` command: run one notebook, build the book, write the report, sweep a grid."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from .profiles import PROFILES


def _params(pairs: Sequence[Sequence[str]] | None) -> dict[str, Any]:
    from .runner import parse_value
    return {name: parse_value(value) for name, value in (pairs or [])}


def cmd_run(args: argparse.Namespace) -> int:
    from .runner import run_notebook
    out = Path(args.out or Path("runs") / Path(args.notebook).stem)
    res = run_notebook(args.notebook, out, _params(args.p), profile=args.profile, log_output=args.verbose)
    print(f"executed notebook: {res.executed}\nresults record:    {res.results}\n"
          f"wall time:         {res.seconds:.1f} s")
    return 0


def cmd_book(args: argparse.Namespace) -> int:
    from .book import build
    build(Path(args.root), profile=args.profile, html=not args.no_html, seed=args.seed,
          out=Path(args.out) if args.out else None)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report
    path = write_report(args.records, args.out)
    print(f"report: {path}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from .grid import load_grid_file, merge_grids, parse_grid
    from .sweep import FAILED, INTERRUPTED, sweep
    from .book import check_can_run
    grid = merge_grids(load_grid_file(args.grid_file) if args.grid_file else {}, parse_grid(args.grid))
    for profile in grid.get("profile", [args.profile]):
        check_can_run(profile)  # the full profile needs a GPU
    out = Path(args.out or Path("runs") / f"sweep_{Path(args.notebook).stem}")
    res = sweep(args.notebook, grid, out, profile=args.profile, workers=args.workers, force=args.force,
                metric=args.metric)
    print(f"{len(res.runs)} runs: {res.count('done') - res.skipped} executed, {res.skipped} already done, "
          f"{res.count(FAILED)} failed, {res.count(INTERRUPTED)} interrupted")
    for run in res.runs:
        s = res.status.get(run.id, {})
        if s.get("status") in (FAILED, INTERRUPTED):
            where = s.get("failed_notebook") or s.get("kernel_log")
            print(f"  {s['status']}: {run.params} -> {s['error']}\n    see {where}")
    print(f"table:  {res.table_path}\nfigure: {res.figure_path or 'none'}\nruns:   {out / 'sweep.json'}")
    for note in res.notes:
        print(note)
    return res.exit_status


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
    run.set_defaults(func=cmd_run)

    book = sub.add_parser("book", help="execute every notebook of _toc.yml and build the HTML book")
    book.add_argument("--profile", choices=PROFILES, default="cpu")
    book.add_argument("--root", default=".")
    book.add_argument("--out", help="build folder (default _build)")
    book.add_argument("--seed", type=int)
    book.add_argument("--no-html", action="store_true", help="execute only")
    book.set_defaults(func=cmd_book)

    report = sub.add_parser("report", help="write the reproducibility report from results records")
    report.add_argument("records", help="folder searched for results records (*.json)")
    report.add_argument("--out", default="book/report.md")
    report.set_defaults(func=cmd_report)

    sweep = sub.add_parser("sweep", help="execute one notebook over a grid of parameters, in parallel",
                           description="Run NOTEBOOK once per combination of the grid; rerunning resumes. "
                                       "Exit status: the number of runs that failed (at most 100).")
    sweep.add_argument("notebook")
    sweep.add_argument("--grid", action="append", metavar="NAME=V1,V2",
                       help="a parameter and its values (repeatable; values are Python literals or strings)")
    sweep.add_argument("--grid-file", help="YAML mapping NAME: [values]; --grid entries override it")
    sweep.add_argument("--profile", choices=PROFILES, default="cpu")
    sweep.add_argument("--workers", type=int, default=1, help="parallel worker processes (default 1)")
    sweep.add_argument("--out", help="output folder (default runs/sweep_<notebook>)")
    sweep.add_argument("--force", action="store_true", help="rerun combinations that are already done")
    sweep.add_argument("--metric", help="metric of the summary figure (default: the first recorded)")
    sweep.set_defaults(func=cmd_sweep)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as err:
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
