"""The results record every executed notebook writes next to itself.

JSON with the metrics, the claims and their verdicts, the profile, seed, parameters,
package versions, wall time and the provenance of :mod:`accel.repro.provenance` (device
name, thread count, git commit, a hash of the `accel` sources, and every local module
the run imported with its file's hash: what the execution cache validates). The book's reproducibility report and `accel sweep`
read these records; a record is written atomically so a half-written file can never
pass for a finished run.
"""
from __future__ import annotations

import json
import os
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..atomic import write_json_atomic
from .claims import CHECK, CLAIM, ILLUSTRATION, Claim, _jsonable
from .provenance import provenance
from .verdicts import fmt_measured, verdict_table_html

RESULTS_ENV = "ACCEL_RESULTS_PATH"
_PACKAGES = ("accel", "torch", "pytorch-lightning", "numpy", "pytorch-optimizer", "mnist1d")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


class Results:
    """Collects one notebook run's metrics and claims, then saves them."""

    def __init__(self, notebook: str, profile: str, seed: int, params: dict[str, Any] | None = None):
        self.notebook = notebook
        self.profile = profile
        self.seed = seed
        self.params = dict(params or {})
        self.metrics: dict[str, Any] = {}
        self.claims: list[Claim] = []
        self._start = time.perf_counter()

    def metric(self, name: str, value: Any, *, glue: bool = True) -> Any:
        """Record ``value`` under ``name`` and glue it for the prose (``{glue:text}`name:.3f```)."""
        if name in self.metrics and _jsonable(self.metrics[name]) != _jsonable(value):
            raise ValueError(f"metric {name!r} recorded twice with different values "
                             f"({self.metrics[name]!r}, then {value!r})")
        self.metrics[name] = value
        if glue:
            _glue(name, value)
        return value

    def metrics_from(self, prefix: str, values: dict[str, Any], *, glue: bool = True) -> None:
        """Record every entry of ``values`` as ``<prefix>.<key>`` (a table's worth of numbers)."""
        for key, value in values.items():
            self.metric(f"{prefix}.{key}" if prefix else str(key), value, glue=glue)

    def glue(self, **values: Any) -> None:
        """Glue values the prose quotes but the record need not keep (a batch size, a grid's size)."""
        for name, value in values.items():
            _glue(name, value)

    def claim(self, claim: Claim) -> Claim:
        """Record ``claim``; its measured value and verdict are glued as ``<id>.measured``, ``<id>.verdict``."""
        if any(c.id == claim.id for c in self.claims):
            raise ValueError(f"claim id {claim.id!r} recorded twice")
        claim.chapter = self.notebook
        self.claims.append(claim)
        _glue(f"{claim.id}.measured", claim.measured)
        _glue(f"{claim.id}.verdict", claim.verdict)
        return claim

    def verdict_table(self) -> "VerdictTable":
        """The claims as the chapter shows them: evidence first, then checks and illustrations.

        A DataFrame indexed by claim id (slice it like one: ``.tail(4)`` shows a section's
        claims) that renders as the book's verdict table: full claim text, coloured badges
        with a legend, units, the test behind each verdict, no index column
        (:func:`accel.repro.verdicts.verdict_table_html`).
        """
        order = {CLAIM: 0, ILLUSTRATION: 1, CHECK: 2}
        shown = sorted(self.claims, key=lambda c: order[c.kind])
        rows = [{"kind": c.kind, "claim": c.statement, "source": c.source, "criterion": c.criterion,
                 "measured": fmt_measured(c.measured, c.details.get("unit")), "verdict": c.verdict}
                for c in shown]
        table = VerdictTable(rows, columns=["kind", "claim", "source", "criterion", "measured", "verdict"],
                             index=pd.Index([c.id for c in shown], name="id"))
        table.attrs["claims"] = {c.id: c.to_dict() for c in shown}
        return table

    def to_dict(self) -> dict[str, Any]:
        return _jsonable({
            "notebook": self.notebook,
            "profile": self.profile,
            "seed": self.seed,
            "params": self.params,
            "metrics": self.metrics,
            "claims": [c.to_dict() for c in self.claims],
            "versions": package_versions(),
            "wall_time_s": time.perf_counter() - self._start,
            **provenance(),  # device, threads, git_commit, accel_source_hash, modules
            "complete": True,
        })

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Write the record to ``path``, else ``$ACCEL_RESULTS_PATH``, else ``results/<notebook>.json``."""
        target = Path(path or os.environ.get(RESULTS_ENV) or Path("results") / f"{self.notebook}.json")
        write_json_atomic(target, self.to_dict())
        return target


def _glue(name: str, value: Any) -> None:
    """Glue a scalar for the book's prose when running inside a kernel (no-op elsewhere)."""
    if isinstance(value, (np.generic,)):
        value = value.item()
    if not isinstance(value, (int, float, str, bool)):
        return
    try:
        from IPython import get_ipython
        if get_ipython() is None:
            return
        from myst_nb import glue
    except ImportError:
        return
    glue(name, value, display=False)


def load(path: str | os.PathLike) -> dict[str, Any]:
    """Read a record; a record without ``complete: true`` is an error, not a result."""
    record = json.loads(Path(path).read_text())
    if not record.get("complete"):
        raise ValueError(f"{path} is not a complete results record")
    return record


class VerdictTable(pd.DataFrame):
    """:meth:`Results.verdict_table`'s DataFrame: its HTML is the book's verdict table."""

    @property
    def _constructor(self) -> type:
        return VerdictTable

    def _repr_html_(self) -> str | None:
        claims = self.attrs.get("claims", {})
        if not len(self) or not all(i in claims for i in self.index):
            return super()._repr_html_()  # reshaped beyond recognition: pandas' own table
        # the legend once, under the chapter's full table (not under each section's slice)
        return verdict_table_html([claims[i] for i in self.index], legend=len(self) == len(claims))
