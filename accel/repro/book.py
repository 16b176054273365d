"""Build the book: execute every notebook of ``_toc.yml`` (or take it from the cache), then
Jupyter Book on the executed copies.

Notebooks are stored without outputs. The build stages the book's sources in
``_build/source`` and puts each listed chapter there as an executed notebook: from the
execution cache (:mod:`accel.repro.cache`) when nothing it depends on changed, with the
chapter's current Markdown; otherwise executed with papermill, ``--jobs`` chapters at a
time (:mod:`accel.repro.execution`), and stored in the cache. A failing chapter is named
with its cell's error while the others finish (and are cached); the build then stops
before the HTML. It writes the execution table (``execution.json``: chapter, profile,
executed or cached, wall time, device), the generated pages (:func:`render.finish_stage`)
and runs ``jupyter-book build`` with execution off, so the HTML shows exactly the
executed numbers.
"""
from __future__ import annotations

import datetime
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import yaml

from ..atomic import write_json_atomic
from .notebook import NOTEBOOK_SUFFIXES
from .profiles import check_profile
from .render import finish_stage, prepare_for_book

SOURCES = ("_config.yml", "_toc.yml", "book")
REFERENCE_TIMES = "book/expected_times.json"


def toc_files(toc: dict) -> Iterator[str]:
    if "root" in toc:
        yield toc["root"]
    for key in ("chapters", "parts", "sections"):
        for entry in toc.get(key, []) or []:
            if "file" in entry:
                yield entry["file"]
            yield from toc_files(entry)


def toc_notebooks(root: Path) -> list[Path]:
    """The notebooks ``_toc.yml`` lists, in book order."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    found = []
    for f in toc_files(toc):
        p = root / f
        candidates = [p] if p.suffix in NOTEBOOK_SUFFIXES else [p.with_suffix(s) for s in NOTEBOOK_SUFFIXES]
        nb = next((c for c in candidates if c.exists() and _is_notebook(c)), None)
        if nb is not None:
            found.append(nb)
    return found


def reference_times(root: Path, profile: str) -> dict[str, float]:
    """Wall seconds per chapter measured in one reference build of ``profile`` (``book/expected_times.json``).

    A fresh clone's cache has no recorded times, and without them the chapters would start
    in book order, the two longest last, one core idle at the end: on the chapter times of
    the 88a9f0a cpu build, two at a time finish after 1040 s in book order and 953 s
    longest first. Times recorded by this machine's own builds take precedence. A missing
    or unreadable file gives no estimates, never an error.
    """
    try:
        seconds = json.loads((root / REFERENCE_TIMES).read_text())[profile]
        return {str(k): float(v) for k, v in seconds.items()}
    except (OSError, ValueError, KeyError, AttributeError, TypeError):
        return {}


def _is_notebook(path: Path) -> bool:
    """A ``.ipynb``, or a ``.md`` with a jupytext header (prose pages are Markdown too)."""
    return path.suffix == ".ipynb" or "jupytext:" in path.read_text().split("\n---", 1)[0]


def _prepare(executed: Path, record: Path, source: Path) -> None:
    """Rewrite an executed chapter as the book shows it (:func:`accel.repro.render.prepare_for_book`)."""
    import nbformat

    from ..atomic import atomic_path
    from .results import load

    nb = prepare_for_book(nbformat.read(executed, as_version=4), load(record), source)
    with atomic_path(executed) as tmp:
        nbformat.write(nb, tmp)


def check_can_run(profile: str) -> None:
    """The ``full`` profile is sized for one GPU; on a CPU it would run for hours."""
    check_profile(profile)
    if profile == "full":
        import torch
        if not torch.cuda.is_available():
            raise SystemExit("profile 'full' needs a CUDA GPU (it is sized for one H100); "
                             "no GPU is visible here. Use --profile cpu (the default) or smoke.")


EXECUTION_TABLE = "execution.json"
EXECUTED, CACHED, FAILED, NOT_EXECUTED = "executed", "cached", "failed", "not executed"


def select_chapters(chapters: list[Path], only: Sequence[str] | None) -> set[str]:
    """The stems ``--only`` names (a stem, a file name or a path); unknown names are an error."""
    stems = [c.stem for c in chapters]
    if not only:
        return set(stems)
    chosen = set()
    for name in only:
        stem = Path(name).stem
        if stem not in stems:
            raise ValueError(f"--only {name!r} is not a chapter of _toc.yml; chapters: {', '.join(stems)}")
        chosen.add(stem)
    return chosen


def build(root: Path = Path("."), profile: str = "cpu", out: Path | None = None,
          html: bool = True, seed: int | None = None, *, jobs: int | None = None, force: bool = False,
          only: Sequence[str] | None = None, cache_dir: Path | None = None,
          progress: bool | None = None, cluster: Any = None) -> Path:
    """Stage, execute (or take from the cache), render; see the module docstring.

    ``jobs``: chapters executed at once (default: the cores); ``force``: ignore the cache;
    ``only``: execute only these chapters (the others come from the cache, or are left
    unexecuted; ``force`` then applies to these only); ``cache_dir``: where the cache
    lives (default ``<build>/cache``). The kernels' own output goes to ``<build>/logs``.
    ``cluster``: ``dask://HOST:PORT``, execute the chapters on that Dask cluster (the build
    folder on a filesystem its workers share).
    """
    from .cache import ExecutionCache, cache_key, merge_prose
    from .execution import Job, execute
    from .notebook import read_notebook
    from .progress import BookProgress
    from .runner import NotebookError, check_parameters
    from .workers import cores

    root = root.resolve()
    check_can_run(profile)
    if isinstance(cluster, str):
        from .cluster import parse_dask_address
        parse_dask_address(cluster)
    jobs = cores() if jobs is None else jobs
    if jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {jobs}")
    chapters = toc_notebooks(root)
    chosen = select_chapters(chapters, only)
    params = {} if seed is None else {"seed": seed}
    sources = {nb.stem: read_notebook(nb) for nb in chapters}
    for nb in chapters:  # every parameter checked before anything is written or started
        check_parameters(nb, {"profile": profile, **params})
    build_dir = (out or root / "_build").resolve()
    cache = ExecutionCache(cache_dir or build_dir / "cache", root)
    stage = _stage(root, build_dir / "source")
    start = time.perf_counter()

    expected = {**reference_times(root, profile), **cache.timings()}
    bar = BookProgress([nb.stem for nb in chapters], expected, jobs, enabled=progress)
    rows: dict[str, dict[str, Any]] = {}
    todo, keys, reasons = [], {}, {}
    for nb in chapters:
        rel, stem = nb.relative_to(root), nb.stem
        key = keys[stem] = cache_key(sources[stem], {"profile": profile, **params}, profile,
                                     root / "constraints.txt")
        entry, why = cache.lookup(stem, key)
        if entry is not None and not (force and stem in chosen):
            try:
                executed = _serve(entry, sources[stem], stage / rel.parent, stem, merge_prose)
            except ValueError:
                entry = None
            else:
                _prepare(executed, stage / rel.parent / f"{stem}.json", nb)
                rows[stem] = _row(stem, profile, CACHED, entry.seconds, entry.record)
                bar.cached(stem)
                continue
        if stem not in chosen:  # --only: the page shows the code without outputs
            _write_unexecuted(sources[stem], stage / rel.parent / f"{stem}.ipynb")
            rows[stem] = _row(stem, profile, NOT_EXECUTED, None, None)
            bar.skipped(stem, f"not executed (--only; {why})")
            continue
        reasons[stem] = "--force" if force and entry is not None else why
        todo.append(Job(stem, nb, stage / rel.parent, params, profile, expected.get(stem),
                        build_dir / "logs" / f"{stem}.log"))

    failures = []

    def done(outcome: Any) -> None:
        job = outcome.job
        if not outcome.ok:
            failures.append(outcome.error)
            rows[job.name] = _row(job.name, profile, FAILED, outcome.seconds, None, outcome.error)
            bar.failed(job.name, outcome.error.splitlines()[0])
            return
        cache.store(job.name, keys[job.name], outcome.executed, outcome.results, outcome.seconds)
        _prepare(outcome.executed, outcome.results, job.notebook)
        rows[job.name] = _row(job.name, profile, EXECUTED, outcome.seconds, outcome.results)
        bar.executed(job.name, outcome.seconds, reasons.get(job.name, ""))

    try:
        execute(todo, jobs, on_start=lambda job: bar.started(job.name), on_done=done, cluster=cluster)
    finally:
        bar.close()
        write_execution_table(stage, [rows[nb.stem] for nb in chapters if nb.stem in rows], profile, jobs,
                              time.perf_counter() - start)
    if failures:
        raise NotebookError(f"{len(failures)} of {len(chapters)} chapters failed (the others are "
                            f"cached; rerun to retry only these):\n" + "\n".join(failures))
    finish_stage(stage, stage / "notebooks")
    if html:
        return _html(stage, build_dir)
    return stage


def _stage(root: Path, stage: Path) -> Path:
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    for name in SOURCES:
        src = root / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, stage / name)
    return stage


def _serve(entry: Any, source: Any, out_dir: Path, stem: str, merge: Any) -> Path:
    """Write the cached execution, with the source's current prose, where papermill would have."""
    import nbformat

    from ..atomic import atomic_path

    merged = merge(source, nbformat.read(entry.executed, as_version=4))
    out_dir.mkdir(parents=True, exist_ok=True)
    executed = out_dir / f"{stem}.ipynb"
    with atomic_path(executed) as tmp:
        nbformat.write(merged, tmp)
    shutil.copyfile(entry.record, out_dir / f"{stem}.json")
    return executed


def _write_unexecuted(nb: Any, path: Path) -> None:
    import nbformat

    from ..atomic import atomic_path
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        nbformat.write(nb, tmp)


def _row(stem: str, profile: str, status: str, seconds: float | None, record: Path | None,
         error: str | None = None) -> dict[str, Any]:
    from .results import load

    rec = load(record) if record is not None else {}
    row = {"chapter": stem, "profile": profile, "status": status,
           "seconds": None if seconds is None else round(float(seconds), 2),
           "device": rec.get("device"), "threads": rec.get("threads"),
           "git_commit": rec.get("git_commit")}
    if error:
        row["error"] = error.splitlines()[0]
    return row


def write_execution_table(stage: Path, rows: list[dict[str, Any]], profile: str, jobs: int,
                          seconds: float) -> Path:
    """``<stage>/execution.json``: how each chapter of this build was obtained (for the report page)."""
    from .provenance import device_kind
    return write_json_atomic(stage / EXECUTION_TABLE, {
        "profile": profile, "jobs": jobs, "device_kind": device_kind(),
        "built_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "wall_s": round(seconds, 2),
        "counts": {s: sum(r["status"] == s for r in rows) for s in (EXECUTED, CACHED, FAILED, NOT_EXECUTED)},
        "chapters": rows})


def _html(stage: Path, build_dir: Path) -> Path:
    # jupyter-book writes to <path-output>/_build/html
    path_output = build_dir.parent if build_dir.name == "_build" else build_dir
    cmd = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(stage),
           "--path-output", str(path_output)]
    subprocess.run(cmd, check=True)
    index = path_output / "_build" / "html" / "index.html"
    print(f"[accel book] open {index}")
    return index
