"""A submission to the race: a recipe (optimizer, schedule, tricks) and its search space, from YAML.

```yaml
name: adamw_cosine
optimizer: {name: adamw, lr: 1.0e-3, weight_decay: 1.0e-4}   # accel.optim.make_optimizer spec
schedule: {name: cosine}                                      # accel.schedules spec (lengths in steps)
tricks: {warmup_fraction: 0.05, label_smoothing: 0.0, grad_clip: null, ema_decay: null}
search_space:                                                  # quasi-random (Sobol) per study
  optimizer.lr: {low: 1.0e-4, high: 1.0e-2, log: true}
  tricks.warmup_fraction: {values: [0.0, 0.05, 0.1]}
```

Every field is checked when the file is loaded, and every trial's full configuration when
the race is planned, so a bad recipe is refused (with the valid choices named) before any
training. The schedule runs over the whole step budget; ``warmup_fraction`` of it is a
linear warm-up (``warmup_steps`` of :mod:`accel.schedules`); ``ema_decay`` (null: off, else in
(0, 1)) evaluates an exponential moving average of the weights (:mod:`accel.experiments.race.trial`). Trials are the points of a
scrambled Sobol sequence (:class:`scipy.stats.qmc.Sobol`) seeded per study, mapped onto the
search space (``log`` dimensions uniformly in the logarithm, ``values`` by index).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TOP_KEYS = ("name", "optimizer", "schedule", "tricks", "search_space", "description")
TRICKS = {"warmup_fraction": 0.0, "label_smoothing": 0.0, "grad_clip": None, "ema_decay": None}
SECTIONS = ("optimizer", "schedule", "tricks")


class RecipeError(ValueError):
    """A recipe file that cannot be raced; the message names the field and the valid choices."""


@dataclass(frozen=True)
class Dimension:
    """One searched hyper-parameter: a range (``low``..``high``, optionally ``log``) or ``values``."""
    key: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    values: tuple[Any, ...] | None = None

    def map(self, u: float) -> Any:
        """The value at ``u`` in [0, 1)."""
        if self.values is not None:
            return self.values[min(int(u * len(self.values)), len(self.values) - 1)]
        assert self.low is not None and self.high is not None
        if self.log:
            return float(math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low))))
        return float(self.low + u * (self.high - self.low))


@dataclass(frozen=True)
class Recipe:
    name: str
    optimizer: dict[str, Any]
    schedule: dict[str, Any]
    tricks: dict[str, Any]
    search_space: tuple[Dimension, ...] = field(default_factory=tuple)
    description: str = ""

    def base_config(self) -> dict[str, Any]:
        return {"optimizer": dict(self.optimizer), "schedule": dict(self.schedule), "tricks": dict(self.tricks)}

    def config_at(self, point: Any) -> dict[str, Any]:
        """The full configuration at one point of [0, 1)^d (d = the search space's size)."""
        config = self.base_config()
        for dim, u in zip(self.search_space, point):
            section, arg = dim.key.split(".", 1)
            config[section][arg] = dim.map(float(u))
        return config

    def trials(self, n: int, study: int, seed: int = 0) -> list[dict[str, Any]]:
        """``n`` quasi-random configurations of study ``study`` (a Sobol sequence seeded per study)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"trials must be a positive int, got {n!r}")
        if not self.search_space:
            return [self.base_config() for _ in range(n)]
        from scipy.stats import qmc
        sampler = qmc.Sobol(d=len(self.search_space), scramble=True, seed=_study_seed(seed, study))
        with warnings.catch_warnings():  # "balance properties" for n not a power of 2: fine for a search
            warnings.simplefilter("ignore")
            points = sampler.random(n)
        return [self.config_at(p) for p in points]


def _study_seed(seed: int, study: int) -> int:
    return 1_000_003 * int(seed) + int(study)


def _number(where: str, value: Any) -> float:
    """A finite number; YAML 1.1 reads ``1e-3`` (no dot) as a string, which is accepted here."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise RecipeError(f"{where} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RecipeError(f"{where} must be a finite number, got {value!r}")
    return value


def _numbers(spec: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in spec.items():
        if isinstance(v, str) and k != "name":
            try:
                v = float(v)
            except ValueError:
                pass
        elif isinstance(v, list):
            v = [float(x) if isinstance(x, str) and _is_float(x) else x for x in v]
        out[k] = v
    return out


def _is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _mapping(where: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RecipeError(f"{where} must be a mapping, got {type(value).__name__} {value!r}")
    return value


def _dimension(key: str, raw: Any) -> Dimension:
    where = f"search_space.{key}"
    raw = _mapping(where, raw)
    section, _, arg = key.partition(".")
    if section not in SECTIONS or not arg:
        raise RecipeError(f"{where}: a searched key is <section>.<argument> with section one of "
                          f"{', '.join(SECTIONS)} (e.g. optimizer.lr), got {key!r}")
    if section == "tricks" and arg not in TRICKS:
        raise RecipeError(f"{where}: unknown trick {arg!r}; valid: {', '.join(TRICKS)}")
    unknown = sorted(set(raw) - {"low", "high", "log", "values"})
    if unknown:
        raise RecipeError(f"{where}: unknown field(s) {unknown}; valid: low, high, log, values")
    if "values" in raw:
        if set(raw) - {"values"}:
            raise RecipeError(f"{where}: give either values or low/high, not both")
        values = raw["values"]
        if not isinstance(values, list) or not values:
            raise RecipeError(f"{where}.values must be a non-empty list, got {values!r}")
        return Dimension(key, values=tuple(float(v) if isinstance(v, str) and _is_float(v) else v for v in values))
    if "low" not in raw or "high" not in raw:
        raise RecipeError(f"{where}: needs low and high (or values)")
    low, high = _number(f"{where}.low", raw["low"]), _number(f"{where}.high", raw["high"])
    log = raw.get("log", False)
    if not isinstance(log, bool):
        raise RecipeError(f"{where}.log must be true or false, got {log!r}")
    if not low < high:
        raise RecipeError(f"{where}: low must be below high, got {low} and {high}")
    if log and low <= 0:
        raise RecipeError(f"{where}: a log range needs low > 0, got {low}")
    return Dimension(key, float(low), float(high), log)


def recipe_from_dict(raw: Any, source: str = "recipe") -> Recipe:
    """Check the structure of a recipe mapping (arguments are checked by :func:`check_config`)."""
    raw = _mapping(source, raw)
    unknown = sorted(set(raw) - set(TOP_KEYS))
    if unknown:
        raise RecipeError(f"{source}: unknown field(s) {unknown}; valid: {', '.join(TOP_KEYS)}")
    for required in ("name", "optimizer"):
        if required not in raw:
            raise RecipeError(f"{source}: missing field {required!r} (fields: {', '.join(TOP_KEYS)})")
    name = raw["name"]
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_." for c in name):
        raise RecipeError(f"{source}: name must be a non-empty string of letters, digits, '-', '_', '.', "
                          f"got {name!r}")
    optimizer = _numbers(_mapping(f"{source}: optimizer", raw["optimizer"]))
    if "name" not in optimizer:
        raise RecipeError(f"{source}: optimizer needs a name (see accel.optim.OPTIMIZERS)")
    schedule = _numbers(_mapping(f"{source}: schedule", raw.get("schedule") or {"name": "constant"}))
    if "name" not in schedule:
        raise RecipeError(f"{source}: schedule needs a name (see accel.schedules.SCHEDULES)")
    tricks_raw = _mapping(f"{source}: tricks", raw.get("tricks") or {})
    bad = sorted(set(tricks_raw) - set(TRICKS))
    if bad:
        raise RecipeError(f"{source}: unknown trick(s) {bad}; valid: {', '.join(TRICKS)}")
    tricks = {**TRICKS, **_numbers(tricks_raw)}
    space = _mapping(f"{source}: search_space", raw.get("search_space") or {})
    dims = tuple(_dimension(str(k), v) for k, v in space.items())
    recipe = Recipe(name, optimizer, schedule, tricks, dims, str(raw.get("description", "")))
    check_config(recipe.base_config(), f"{source} ({name})")
    for dim in dims:  # each end of each range (or each value), the others at their base values
        ends = (0.0, 1.0 - 1e-12) if dim.values is None else [i / len(dim.values) for i in range(len(dim.values))]
        for u in ends:
            config = recipe.base_config()
            section, arg = dim.key.split(".", 1)
            config[section][arg] = dim.map(u)
            check_config(config, f"{source} ({name}), search_space.{dim.key} = {dim.map(u)!r}")
    return recipe


def load_recipe(path: str | Path) -> Recipe:
    """Read and check a recipe YAML file; every problem is a :class:`RecipeError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no recipe file {path}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise RecipeError(f"{path}: not valid YAML: {err}") from None
    return recipe_from_dict(raw, str(path))


def check_config(config: dict[str, Any], where: str, total_steps: int = 1000) -> None:
    """Check one full configuration against the optimizer and schedule factories, before training."""
    from ...optim import check_hyperparameters, check_optimizer, valid_arguments
    from ...schedules import lr_factor

    tricks = config["tricks"]
    checks = {"warmup_fraction": lambda v: isinstance(v, (int, float)) and 0 <= v < 1,
              "label_smoothing": lambda v: isinstance(v, (int, float)) and 0 <= v < 1,
              "grad_clip": lambda v: v is None or (isinstance(v, (int, float)) and v > 0),
              "ema_decay": lambda v: v is None or (isinstance(v, (int, float)) and 0 < v < 1)}
    whats = {"grad_clip": "null or a number > 0", "ema_decay": "null or a number in (0, 1)"}
    for key, ok in checks.items():
        value = tricks.get(key)
        if isinstance(value, bool) or not ok(value):
            raise RecipeError(f"{where}: tricks.{key} must be {whats.get(key, 'a number in [0, 1)')}, got {value!r}")
    opt = dict(config["optimizer"])
    name = opt.pop("name")
    if tricks.get("ema_decay") and name == "adamw_schedulefree":
        raise RecipeError(f"{where}: tricks.ema_decay with {name}: Schedule-Free already evaluates an average "
                          "of its iterates; an EMA of its training point y is not that average (set ema_decay: null)")
    try:
        check_optimizer(name)
        valid = valid_arguments(name)
        unknown = [k for k in opt if k not in valid]
        if unknown:
            raise ValueError(f"optimizer {name!r} has no argument {unknown}; valid: {', '.join(valid)}")
        check_hyperparameters(opt)
        lr_factor(schedule_spec(config, total_steps), total_steps)
    except ValueError as err:
        raise RecipeError(f"{where}: {err}") from None


def schedule_spec(config: dict[str, Any], total_steps: int) -> dict[str, Any]:
    """The :mod:`accel.schedules` spec over ``total_steps``, with the warm-up as ``warmup_steps``."""
    spec = dict(config["schedule"])
    warmup = int(round(float(config["tricks"].get("warmup_fraction") or 0.0) * total_steps))
    if warmup:
        spec["warmup_steps"] = warmup
    return spec
