"""Build the book: execute every notebook of ``_toc.yml``, then Jupyter Book on the copies.

Notebooks are stored without outputs. The build stages the book's sources in
``_build/source``, executes each listed notebook there with papermill (a failure
stops the build naming the notebook and its cell's error), writes the
reproducibility report from the results records and runs ``jupyter-book build``
with execution off, so the HTML shows exactly the executed numbers.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import yaml

from .notebook import NOTEBOOK_SUFFIXES
from .profiles import check_profile
from .render import finish_stage, prepare_for_book
from .runner import run_notebook

SOURCES = ("_config.yml", "_toc.yml", "book")


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


def build(root: Path = Path("."), profile: str = "cpu", out: Path | None = None,
          html: bool = True, seed: int | None = None) -> Path:
    root = root.resolve()
    check_can_run(profile)
    build_dir = (out or root / "_build").resolve()
    stage = build_dir / "source"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    for name in SOURCES:
        src = root / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, stage / name)
    params = {} if seed is None else {"seed": seed}
    for nb in toc_notebooks(root):
        rel = nb.relative_to(root)
        start = time.perf_counter()
        print(f"[accel book] executing {rel} (profile {profile})", flush=True)
        out = run_notebook(nb, stage / rel.parent, params, profile=profile)
        _prepare(out.executed, out.results, nb)
        print(f"[accel book] {rel} done in {time.perf_counter() - start:.0f} s", flush=True)
    finish_stage(stage, stage / "notebooks")
    if html:
        # jupyter-book writes to <path-output>/_build/html
        path_output = build_dir.parent if build_dir.name == "_build" else build_dir
        cmd = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(stage),
               "--path-output", str(path_output)]
        subprocess.run(cmd, check=True)
        index = path_output / "_build" / "html" / "index.html"
        print(f"[accel book] open {index}")
        return index
    return stage
