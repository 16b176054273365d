"""`accel book`'s execution cache, parallel chapters and execution table, on a tiny book.

The book has two MyST chapters, ``a`` and ``b``; each imports its own module (``mod_a``,
``mod_b``) from a temporary package on ``PYTHONPATH``, glues a value and appends its
name to a log, so a test counts exactly which chapters executed.
"""
import json
import os
from pathlib import Path

import nbformat
import pytest

from accel.repro.book import build
from accel.repro.cache import ExecutionCache, cache_key, merge_prose
from accel.repro.execution import Job, longest_first
from accel.repro.notebook import glued_names, read_notebook
from accel.repro.progress import BookProgress
from accel.repro.runner import NotebookError
from accel.repro.workers import threads_per_job

CHAPTER = '''\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# Chapter {n}

{prose}

```{{code-cell}}
:tags: [parameters]

profile = "cpu"
seed = 0
```

```{{code-cell}}
import os
import mod_{n}
from accel.repro.results import Results
with open(os.environ["TINY_BOOK_LOG"], "a") as f:
    f.write("{n}\\n")
if os.environ.get("TINY_BOOK_FAIL") == "{n}":
    raise RuntimeError("asked to fail")
r = Results("{n}", profile, seed)
r.metric("value", mod_{n}.VALUE * {factor} + seed)
r.save()
```
'''


def write_chapter(root: Path, n: str, prose: str = "Some prose.", factor: int = 1) -> None:
    (root / "notebooks" / f"{n}.md").write_text(CHAPTER.format(n=n, prose=prose, factor=factor))


@pytest.fixture
def book(tmp_path, monkeypatch):
    root = tmp_path / "book"
    (root / "notebooks").mkdir(parents=True)
    (root / "book").mkdir()
    (root / "book" / "intro.md").write_text("# Intro\n")
    (root / "_config.yml").write_text("title: tiny\n")
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n"
                                   "- file: notebooks/a\n- file: notebooks/b\n")
    (root / "constraints.txt").write_text("numpy==2.0\n")
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    for n, value in (("a", 1), ("b", 2)):
        (pkg / f"mod_{n}.py").write_text(f"VALUE = {value}\n")
        write_chapter(root, n)
    log = tmp_path / "executions.log"
    monkeypatch.setenv("PYTHONPATH", str(pkg))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")  # an edit within one second must be seen
    monkeypatch.setenv("TINY_BOOK_LOG", str(log))
    monkeypatch.delenv("TINY_BOOK_FAIL", raising=False)

    class Book:
        def __init__(self):
            self.root, self.pkg, self.log = root, pkg, log
            self.stage = root / "_build" / "source"

        def build(self, **kw):
            """Build and return the chapters executed by this build, in log order."""
            before = self.executions()
            build(self.root, profile="smoke", html=False, progress=False, **{"jobs": 1, **kw})
            return self.executions()[len(before):]

        def executions(self):
            return self.log.read_text().split() if self.log.exists() else []

        def table(self):
            return json.loads((self.stage / "execution.json").read_text())

        def record(self, n):
            return json.loads((self.stage / "notebooks" / f"{n}.json").read_text())

    return Book()


def test_second_build_executes_nothing_and_says_cached(book, capsys):
    assert sorted(book.build()) == ["a", "b"]
    first = capsys.readouterr().out
    assert "[accel book] a: executed in" in first and "[accel book] b: executed in" in first
    table = book.table()
    assert table["counts"] == {"executed": 2, "cached": 0, "failed": 0, "not executed": 0}
    assert [r["chapter"] for r in table["chapters"]] == ["a", "b"]
    assert {r["status"] for r in table["chapters"]} == {"executed"}

    assert book.build() == []
    out = capsys.readouterr().out
    assert "[accel book] a: cached" in out and "[accel book] b: cached" in out
    table = book.table()
    assert table["counts"]["cached"] == 2 and table["profile"] == "smoke"
    row = table["chapters"][0]
    assert set(row) >= {"chapter", "profile", "status", "seconds", "device", "threads"}
    assert row["seconds"] > 0 and row["device"]
    assert book.record("a")["metrics"] == {"value": 1}
    assert (book.stage / "book" / "report.md").exists()  # finish_stage ran on the cached records


def test_prose_edit_rerenders_without_executing(book):
    book.build()
    write_chapter(book.root, "a", prose="A corrected sentence.")
    assert book.build() == []
    staged = nbformat.read(book.stage / "notebooks" / "a.ipynb", as_version=4)
    text = "".join(c.source for c in staged.cells if c.cell_type == "markdown")
    assert "A corrected sentence." in text and "Some prose." not in text
    assert "value" in glued_names(staged)  # the outputs (and their glued values) are kept
    assert any("remove-cell" in c.metadata.get("tags", []) for c in staged.cells)  # prepare_for_book ran


def test_code_edit_executes_exactly_that_chapter(book):
    book.build()
    write_chapter(book.root, "b", factor=10)
    assert book.build() == ["b"]
    assert book.record("b")["metrics"] == {"value": 20}
    assert {r["chapter"]: r["status"] for r in book.table()["chapters"]} == {"a": "cached", "b": "executed"}


def test_module_edit_executes_exactly_the_chapters_that_imported_it(book, capsys):
    book.build()
    (book.pkg / "mod_a.py").write_text("VALUE = 5\n")
    capsys.readouterr()
    assert book.build() == ["a"]
    assert "a: executed in" in (out := capsys.readouterr().out) and "(changed: mod_a)" in out
    assert book.record("a")["metrics"] == {"value": 5} and book.record("b")["metrics"] == {"value": 2}
    assert "mod_a" in book.record("a")["modules"] and "mod_a" not in book.record("b")["modules"]
    assert "accel.repro.results" in book.record("a")["modules"]
    # changing the pins (or the profile, or the parameters) changes the key of every chapter
    (book.root / "constraints.txt").write_text("numpy==2.1\n")
    assert sorted(book.build()) == ["a", "b"]
    assert "(code, parameters, profile, pins or device changed)" in capsys.readouterr().out


def _damage(entry: Path, how: str) -> None:
    if how == "truncated entry":
        (entry / "entry.json").write_text('{"version": 1, "ke')
    elif how == "no record":
        (entry / "record.json").unlink()
    elif how == "incomplete record":
        (entry / "record.json").write_text(json.dumps({"notebook": "a", "complete": False}))
    elif how == "garbage notebook":
        (entry / "executed.ipynb").write_text("not json")
    elif how == "no entry file":
        (entry / "entry.json").unlink()


def test_a_corrupt_or_half_written_entry_is_a_miss(book):
    book.build()
    cache = book.root / "_build" / "cache"
    for damage_a, damage_b in (("truncated entry", "no record"), ("incomplete record", "garbage notebook"),
                               ("no entry file", None)):
        _damage(next((cache / "a").iterdir()), damage_a)
        if damage_b:
            _damage(next((cache / "b").iterdir()), damage_b)
        assert sorted(book.build()) == (["a", "b"] if damage_b else ["a"]), (damage_a, damage_b)
    assert book.build() == []  # and each re-execution was cached


def test_force_only_and_the_cache_option(book, tmp_path, capsys):
    book.build()
    assert sorted(book.build(force=True)) == ["a", "b"]
    assert book.build(only=["b"], force=True) == ["b"]  # --only b --force: b again, a from the cache
    (book.pkg / "mod_a.py").write_text("VALUE = 7\n")
    capsys.readouterr()
    assert book.build(only=["b"]) == []  # a is stale but not chosen: shown unexecuted, never stale
    assert "a: not executed (--only; changed: mod_a)" in capsys.readouterr().out
    staged = nbformat.read(book.stage / "notebooks" / "a.ipynb", as_version=4)
    assert all(not c.get("outputs") for c in staged.cells if c.cell_type == "code")
    with pytest.raises(ValueError, match="'zz' is not a chapter of _toc.yml; chapters: a, b"):
        book.build(only=["zz"])
    elsewhere = tmp_path / "elsewhere"
    assert sorted(book.build(cache_dir=elsewhere)) == ["a", "b"]
    assert (elsewhere / "a").is_dir() and (elsewhere / "timings.json").exists()


def test_parallel_build_matches_sequential_and_isolates_a_failure(book, tmp_path, monkeypatch, capsys):
    assert sorted(book.build(jobs=1, force=True)) == ["a", "b"]
    sequential = {n: book.record(n)["metrics"] for n in "ab"}
    assert sorted(book.build(jobs=2, force=True)) == ["a", "b"]
    assert {n: book.record(n)["metrics"] for n in "ab"} == sequential
    threads = int(os.environ.get("OMP_NUM_THREADS") or threads_per_job(2))  # the environment wins
    assert {r["threads"] for r in book.table()["chapters"]} == {threads}

    write_chapter(book.root, "a", factor=3)
    write_chapter(book.root, "b", factor=3)
    monkeypatch.setenv("TINY_BOOK_FAIL", "b")
    with pytest.raises(NotebookError, match=r"1 of 2 chapters failed[\s\S]*b.md failed in cell \d+: "
                                            r"RuntimeError: asked to fail"):
        book.build(jobs=2)
    assert "b: FAILED: b.md failed in cell" in capsys.readouterr().out
    assert {r["chapter"]: r["status"] for r in book.table()["chapters"]} == {"a": "executed", "b": "failed"}
    monkeypatch.delenv("TINY_BOOK_FAIL")
    assert book.build(jobs=2) == ["b"]  # a finished and was cached despite b's failure


def test_merge_prose_keeps_outputs_and_refuses_other_code(book):
    book.build()
    entry = next((book.root / "_build" / "cache" / "a").iterdir())
    executed = nbformat.read(entry / "executed.ipynb", as_version=4)
    write_chapter(book.root, "a", prose="New words.")
    merged = merge_prose(read_notebook(book.root / "notebooks" / "a.md"), executed)
    assert [c.cell_type for c in merged.cells] == ["markdown", "code", "code", "code"]  # + injected
    assert "New words." in merged.cells[0].source
    assert [c.get("outputs") for c in merged.cells if c.cell_type == "code"] == \
           [c.get("outputs") for c in executed.cells if c.cell_type == "code"]
    write_chapter(book.root, "a", factor=2)
    with pytest.raises(ValueError, match="code cells differ"):
        merge_prose(read_notebook(book.root / "notebooks" / "a.md"), executed)


def test_cache_key_ignores_prose_but_not_code_parameters_profile_or_device(book):
    path = book.root / "notebooks" / "a.md"
    key = lambda **kw: cache_key(read_notebook(path), {"profile": "smoke", **kw.pop("params", {})},
                                 kw.pop("profile", "smoke"), book.root / "constraints.txt", kw.pop("device", "cpu"))
    base = key()
    write_chapter(book.root, "a", prose="Other prose.")
    assert key() == base
    assert len({base, key(params={"seed": 1}), key(profile="cpu"), key(device="cuda:H100")}) == 4
    write_chapter(book.root, "a", factor=2)
    assert key() != base


def test_timings_order_longest_first_and_progress_estimates_remaining(tmp_path):
    cache = ExecutionCache(tmp_path)
    assert cache.timings() == {}
    (tmp_path / "timings.json").write_text("{broken")
    assert cache.timings() == {}  # unreadable: no estimates, never a crash
    cache.record_time("x", 12.0)
    assert cache.timings() == {"x": 12.0}
    jobs = [Job("short", Path("s"), Path("."), expected=5.0), Job("new", Path("n"), Path(".")),
            Job("long", Path("l"), Path("."), expected=50.0)]
    assert [j.name for j in longest_first(jobs)] == ["new", "long", "short"]
    bar = BookProgress(["p", "q", "r"], {"p": 30.0, "q": 10.0, "r": 20.0}, jobs=2, enabled=False,
                       echo=lambda line: None)
    assert bar.remaining() == pytest.approx(30.0)  # 60 s of work on 2 jobs
    bar.cached("p")
    assert bar.remaining() == pytest.approx(15.0)
    bar.close()
    unknown = BookProgress(["p", "z"], {"p": 3.0}, enabled=False, echo=lambda line: None)
    assert unknown.remaining() is None  # a chapter never timed: no made-up estimate
    unknown.close()


def test_a_fresh_cache_starts_the_chapters_longest_first_by_the_reference_times(book):
    times = book.root / "book" / "expected_times.json"
    assert book.build(cache_dir=book.root / "c1") == ["a", "b"]  # no times at all: book order
    times.write_text(json.dumps({"about": "test", "cpu": {"a": 1.0, "b": 9.0}}))
    assert book.build(cache_dir=book.root / "c2") == ["a", "b"]  # times of another profile: unused
    times.write_text(json.dumps({"cpu": {"a": 1.0}, "smoke": {"a": 1.0, "b": 9.0}}))
    assert book.build(cache_dir=book.root / "c3") == ["b", "a"]  # the build's profile: longest first
    times.write_text("{broken")
    assert book.build(cache_dir=book.root / "c4") == ["a", "b"]  # unreadable: no estimates, no error
