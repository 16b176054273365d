"""A sweep's grid: parsed from ``--grid name=v1,v2`` or a YAML file, expanded into runs.

Each combination gets a stable id, a hash of the notebook's name and its parameters,
so rerunning a sweep finds the runs it already finished.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from .results import load
from .runner import parse_value


def split_values(text: str) -> list[str]:
    """Split ``v1,v2,...`` on commas outside brackets and quotes (``[1, 2],[3]`` is two values)."""
    parts, depth, quote, current = [], 0, "", []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def parse_grid(items: Sequence[str] | None) -> dict[str, list[Any]]:
    """``["lr=1e-3,3e-3", "seed=0,1"]`` -> ``{"lr": [0.001, 0.003], "seed": [0, 1]}``."""
    grid: dict[str, list[Any]] = {}
    for item in items or []:
        name, sep, values = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"grid entry {item!r} is not of the form name=v1,v2,...")
        if name in grid:
            raise ValueError(f"grid parameter {name!r} is given twice; list all its values once")
        grid[name] = [parse_value(v) for v in split_values(values)]
    return grid


def load_grid_file(path: str | os.PathLike) -> dict[str, list[Any]]:
    """A YAML mapping ``name: [values]`` (a scalar is one value).

    Strings are read like command-line values, so ``1e-3`` (a string to YAML 1.1)
    becomes the float 0.001, exactly as ``--grid lr=1e-3`` would.
    """
    import yaml

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no grid file at {path}")
    if not path.is_file():
        raise ValueError(f"grid file {path} is a folder, not a YAML file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"grid file {path} is not valid YAML: {' '.join(str(err).split())}") from None
    except UnicodeDecodeError:
        raise ValueError(f"grid file {path} is not a text file") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"grid file {path} must be a mapping name: [values], got {type(data).__name__}")
    grid = {}
    for name, values in data.items():
        values = values if isinstance(values, list) else [values]
        grid[str(name)] = [parse_value(v) if isinstance(v, str) else v for v in values]
    return grid


def merge_grids(*grids: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
    """Later grids override earlier ones name by name (``--grid`` over ``--grid-file``)."""
    merged: dict[str, list[Any]] = {}
    for g in grids:
        merged.update(g)
    return merged


def expand(grid: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, the first parameter varying slowest."""
    names = list(grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*(grid[n] for n in names))]


def run_id(notebook: str, params: Mapping[str, Any]) -> str:
    """A stable name for one run: a hash of the notebook's name and its parameters."""
    text = json.dumps({"notebook": notebook, "params": dict(params)}, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass
class Run:
    """One combination of the grid: its parameters and where its outputs go."""
    id: str
    params: dict[str, Any]
    dir: Path

    def record_path(self, stem: str) -> Path:
        return self.dir / f"{stem}.json"

    def is_complete(self, stem: str) -> bool:
        """Done means: a complete results record and the executed notebook next to it."""
        if not (self.dir / f"{stem}.ipynb").exists():
            return False
        try:
            load(self.record_path(stem))
        except (OSError, ValueError):
            return False
        return True
