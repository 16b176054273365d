"""Progress lines for long work: chapters of a book build, cells of one run (tqdm).

Each shows done/total, the elapsed time and the expected remaining time computed from
the last recorded wall times (a chapter's previous execution; a cell's previous
duration, which papermill stores in the executed notebook), rather than from the
average rate, which means little when one chapter takes five times another. The
notebooks' own output (training) never reaches the terminal: papermill keeps it in
the executed notebook.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

BAR_FORMAT = "{desc}: {n_fmt}/{total_fmt} {unit} [{elapsed}{postfix}]"


def _terminal() -> Any:
    """A handle on this process's stderr as it is now: the bar keeps writing there while a
    chapter's kernel output is sent to a log (:class:`accel.repro.workers.output_to`)."""
    try:
        return os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1)
    except (OSError, ValueError, AttributeError):  # no real stderr (pytest capture, IDLE)
        return sys.stderr


def _tqdm(total: int, desc: str, unit: str, enabled: bool | None, initial: int = 0,
          file: Any = None) -> Any:
    from tqdm import tqdm
    file = file or sys.stderr
    if enabled is None:
        enabled = bool(getattr(file, "isatty", lambda: False)())
    try:  # a pseudo-terminal may report 0 columns, and tqdm then draws nothing
        width = os.get_terminal_size(file.fileno()).columns
    except (OSError, ValueError, AttributeError):
        width = 0
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, bar_format=BAR_FORMAT,
                disable=not enabled, file=file, dynamic_ncols=width > 0, ncols=None if width else 100)


def _fmt(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"


class BookProgress:
    """One bar for a book build, plus one printed line per chapter (``executed``/``cached``).

    ``expected`` maps a chapter to its last recorded wall time (seconds); ``jobs`` is
    how many run at once, so the remaining time is the remaining work divided by it.
    """

    def __init__(self, chapters: list[str], expected: dict[str, float], jobs: int = 1,
                 enabled: bool | None = None, echo: Callable[[str], None] | None = None):
        self.expected = {c: float(expected[c]) for c in chapters if c in expected}
        self.jobs = max(1, jobs)
        self.running: dict[str, float] = {}
        self.left = set(chapters)
        self.start = time.perf_counter()
        self.out = _terminal()
        self.bar = _tqdm(len(chapters), "accel book", "chapters", enabled, file=self.out)
        self._echo = echo
        self._lock = threading.Lock()
        self._stop = threading.Event()
        if not self.bar.disable:
            threading.Thread(target=self._tick, daemon=True).start()

    def line(self, text: str) -> None:
        if self._echo is not None:
            self._echo(text)
        elif self.bar.disable:
            print(text, flush=True)
        else:
            self.bar.write(text, file=self.out)

    def cached(self, chapter: str, detail: str = "") -> None:
        self._finish(chapter, f"[accel book] {chapter}: cached{detail}")

    def skipped(self, chapter: str, why: str) -> None:
        self._finish(chapter, f"[accel book] {chapter}: {why}")

    def started(self, chapter: str) -> None:
        with self._lock:
            self.running[chapter] = time.perf_counter()
        self._refresh()

    def executed(self, chapter: str, seconds: float, why: str = "") -> None:
        self.expected[chapter] = seconds
        self._finish(chapter, f"[accel book] {chapter}: executed in {seconds:.0f} s" + (f" ({why})" if why else ""))

    def failed(self, chapter: str, error: str) -> None:
        self._finish(chapter, f"[accel book] {chapter}: FAILED: {error}")

    def remaining(self) -> float | None:
        """Expected seconds left: unstarted chapters' last times plus what running ones still need."""
        now = time.perf_counter()
        with self._lock:
            if any(c not in self.expected for c in self.left):
                return None
            work = sum(max(0.0, self.expected[c] - (now - self.running[c])) if c in self.running
                       else self.expected[c] for c in self.left)
        return work / min(self.jobs, max(1, len(self.left)))

    def close(self) -> None:
        self._stop.set()
        self._refresh()
        self.bar.close()
        if self.out is not sys.stderr:
            self.out.close()

    def _finish(self, chapter: str, text: str) -> None:
        with self._lock:
            self.left.discard(chapter)
            self.running.pop(chapter, None)
        self.line(text)
        self.bar.update(1)
        self._refresh()

    def _refresh(self) -> None:
        left = self.remaining()
        postfix = ", ".join(filter(None, [
            f"{len(self.running)} running" if self.running else "",
            f"~{_fmt(left)} left" if left is not None and self.left else
            ("remaining unknown (first build)" if self.left else "")]))
        self.bar.set_postfix_str(postfix, refresh=True)

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            self._refresh()


def previous_durations(executed: str | Path) -> list[float] | None:
    """Each cell's duration in a previous executed notebook (papermill's metadata), if any."""
    import nbformat
    try:
        nb = nbformat.read(executed, as_version=4)
        return [float(c.metadata.get("papermill", {}).get("duration") or 0.0) for c in nb.cells]
    except Exception:  # noqa: BLE001 - no or unreadable previous run: no estimate
        return None


class CellProgress:
    """Progress over the cells of one notebook run (``accel run``).

    ``previous`` are the durations of the same notebook's cells in its last run; the
    expected remaining time is the sum over the cells not yet done.
    """

    def __init__(self, name: str, total: int, previous: list[float] | None = None,
                 enabled: bool | None = None):
        self.previous = previous if previous and len(previous) >= total else None
        self.out = _terminal()
        self.bar = _tqdm(total, name, "cells", enabled, file=self.out)
        self.done = 0

    def cell_done(self, index: int | None) -> None:
        self.done = (index + 1) if index is not None else self.done + 1
        self.bar.n = self.done
        if self.previous is not None:
            self.bar.set_postfix_str(f"~{_fmt(sum(self.previous[self.done:]))} left (last run)",
                                     refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()
        if self.out is not sys.stderr:
            self.out.close()
