"""A notebook's parameters: names, types and valid values, read from its ``parameters`` cell.

Each line of the cell declares one parameter with a type and a default, and may end its
comment with the valid values, so that a bad value is refused before a kernel starts::

    profile: str = "cpu"            # smoke | cpu | full
    seed: int = 0                   # base seed [0, inf)
    epochs: int | None = None       # epochs (None: from the profile) [1, 1000]
    lr: float | None = None         # learning rate (0, 10]
    norm: str = "bn"                # {bn, ln, none}
    batches: list[int] | None = None  # batch sizes [1, 60000]

Types: ``int``, ``float`` (an int is accepted), ``str``, ``bool``, ``list[T]``, ``dict``
and unions with ``None``. A range ``[lo, hi]`` (brackets closed, parentheses open,
``inf`` allowed) or a set ``{a, b}`` at the end of the comment constrains the value
(every element, for a list). A bound may name another parameter (``batch: int | None =
None  # [1, train_size]``): it is that parameter's value in this run, the one given or
else the profile's (so a batch size that does not fit the data is refused).

A parameter without an annotation takes its default's type. One whose default is
``None`` (the value comes from the profile) and has no annotation gets its type from
the notebook's profile table (the literal ``profiles.resolve(profile, {...})`` call, see
:func:`profile_table`): ``int`` if every profile gives an int, and so on; and when every
profile's value is a positive number, the range ``(0, inf)`` (no negative epochs, no
zero learning rate).
"""
from __future__ import annotations

import ast
import io
import math
import re
import tokenize
from dataclasses import dataclass, field, replace
from typing import Any

_SCALARS = {"int": int, "float": float, "str": str, "bool": bool, "dict": dict, "None": type(None)}
_BOUND = r"-?[\d.e+-]+|-?inf|[A-Za-z_]\w*"
_RANGE = re.compile(rf"([\[(])\s*({_BOUND})\s*,\s*({_BOUND})\s*([\])])\s*$")
SEED_RANGE = {"low": 0.0, "high": float(2**32 - 1)}
_CHOICES = re.compile(r"\{([^{}]*)\}\s*$")


@dataclass(frozen=True)
class Parameter:
    """One parameter of a notebook: its default, its type and its valid values."""
    name: str
    default: Any
    annotation: str | None = None
    help: str = ""
    low: float | str | None = None
    high: float | str | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] | None = None
    profile_values: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    inferred: bool = False  # type and range read from the profile table, not declared

    def describe(self, context: dict[str, Any] | None = None) -> str:
        """The valid values in words, for error messages."""
        parts = [self.annotation or type(self.default).__name__]
        if self.low is not None:
            lo, hi = (_bound_text(b, context) for b in (self.low, self.high))
            parts.append(f"in {'(' if self.low_open else '['}{lo}, {hi}{')' if self.high_open else ']'}")
        if self.choices:
            parts.append(f"one of {', '.join(self.choices)}")
        if self.inferred:
            parts.append("(from the profile table)")
        return " ".join(parts)

    def check(self, value: Any, notebook: str = "notebook", context: dict[str, Any] | None = None) -> Any:
        """``value`` if it is valid for this parameter, else a ValueError naming it and the valid values.

        ``context`` holds the run's other parameter values, for bounds that name one.
        """
        where = f"parameter {self.name!r} of {notebook}"
        if not _matches(value, self.type_expr()):
            raise ValueError(f"{where} expects {self.describe(context)} (default {self.default!r}), "
                             f"got {type(value).__name__} {value!r}")
        low, high = _bound(self.low, context), _bound(self.high, context)
        for item in (value if isinstance(value, list) else [value]):
            if item is None:
                continue
            if self.low is not None and isinstance(item, (int, float)) and not isinstance(item, bool):
                below = low is not None and (item <= low if self.low_open else item < low)
                above = high is not None and (item >= high if self.high_open else item > high)
                if below or above or (isinstance(item, float) and math.isnan(item)):
                    raise ValueError(f"{where} must be {self.describe(context)}, got {value!r}")
            if self.choices and str(item) not in self.choices:
                raise ValueError(f"{where} must be one of {', '.join(self.choices)}, got {value!r}")
        return value

    def type_expr(self) -> Any:
        if self.annotation is None:
            return None if self.default is None else type(self.default).__name__
        return ast.parse(self.annotation, mode="eval").body


def _matches(value: Any, expr: Any) -> bool:
    """Whether ``value`` has the type written in ``expr`` (an annotation's AST, or a type name)."""
    if expr is None:  # no annotation and a None default: nothing to check against
        return True
    if isinstance(expr, str):
        expr = ast.Name(expr)
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.BitOr):
        return _matches(value, expr.left) or _matches(value, expr.right)
    if isinstance(expr, ast.Constant) and expr.value is None:
        return value is None
    if isinstance(expr, ast.Subscript) and isinstance(expr.value, ast.Name) and expr.value.id == "list":
        return isinstance(value, list) and all(_matches(v, expr.slice) for v in value)
    if isinstance(expr, ast.Name) and expr.id in _SCALARS:
        kind = _SCALARS[expr.id]
        if kind is float:
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        if kind is int:
            return isinstance(value, int) and not isinstance(value, bool)
        return isinstance(value, kind)
    raise ValueError(f"unsupported parameter annotation {ast.unparse(expr)!r}; "
                     f"use {', '.join(_SCALARS)}, list[T] and unions with None")


def _check_annotation(expr: Any) -> None:
    """Refuse an annotation :func:`_matches` cannot check (naming it and the supported ones)."""
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.BitOr):
        _check_annotation(expr.left)
        _check_annotation(expr.right)
    elif isinstance(expr, ast.Subscript) and isinstance(expr.value, ast.Name) and expr.value.id == "list":
        _check_annotation(expr.slice)
    elif not (isinstance(expr, ast.Constant) and expr.value is None) and not (
            isinstance(expr, ast.Name) and expr.id in _SCALARS):
        raise ValueError(f"unsupported parameter annotation {ast.unparse(expr)!r}; "
                         f"use {', '.join(_SCALARS)}, list[T] and unions with None")


def _comments(source: str) -> dict[int, str]:
    out = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            out[tok.start[0]] = tok.string.lstrip("#").strip()
    return out


def _number_or_name(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def _bound(bound: float | str | None, context: dict[str, Any] | None) -> float | None:
    """A numeric bound, or the value of the parameter it names (None when unknown or not a number)."""
    if bound is None or isinstance(bound, float):
        return bound
    value = (context or {}).get(bound)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _bound_text(bound: float | str | None, context: dict[str, Any] | None) -> str:
    if isinstance(bound, str):
        value = _bound(bound, context)
        return bound if value is None else f"{bound} = {value:g}"
    return f"{bound:g}"


def _constraint(comment: str) -> dict[str, Any]:
    m = _RANGE.search(comment)
    if m:
        return {"low": _number_or_name(m.group(2)), "high": _number_or_name(m.group(3)),
                "low_open": m.group(1) == "(", "high_open": m.group(4) == ")"}
    m = _CHOICES.search(comment)
    if m:
        return {"choices": tuple(c.strip().strip("'\"") for c in m.group(1).split(",") if c.strip())}
    return {}


def parse_parameters(source: str, notebook: str = "notebook") -> dict[str, Parameter]:
    """The parameters a ``parameters`` cell declares, in order."""
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        raise ValueError(f"the parameters cell of {notebook} is not valid Python: {err}") from None
    comments = _comments(source)
    params: dict[str, Parameter] = {}
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            name, annotation, value = node.target.id, ast.unparse(node.annotation), node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, annotation, value = node.targets[0].id, None, node.value
        else:
            raise ValueError(f"the parameters cell of {notebook} may only assign names "
                             f"(line {node.lineno}: {ast.unparse(node)[:60]})")
        try:
            default = ast.literal_eval(value)
        except ValueError:
            raise ValueError(f"parameter {name!r} of {notebook} needs a literal default, "
                             f"got {ast.unparse(value)}") from None
        comment = comments.get(node.lineno, "")
        constraint = _constraint(comment)
        if name == "seed" and not constraint and isinstance(default, int):
            constraint = SEED_RANGE  # numpy and torch take seeds in [0, 2**32)
        param = Parameter(name, default, annotation, comment, **constraint)
        if annotation is not None:
            _check_annotation(param.type_expr())  # an unsupported annotation is the notebook's error, found now
        params[name] = param
    return params


# ---------------------------------------------------------------- the profile table

def profile_table(sources: list[str]) -> dict[str, dict[str, Any]]:
    """knob -> {profile: value} from the notebook's ``profiles.resolve(profile, {...})`` call.

    Read from the code cells' syntax, without running them: only literal values count
    (a computed value is left out); cells that are not plain Python (magics) are skipped.
    """
    knobs: dict[str, dict[str, Any]] = {}
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and len(node.args) >= 2 and isinstance(node.args[1], ast.Dict)):
                continue
            func = node.func
            if (func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)) != "resolve":
                continue
            for key, table in zip(node.args[1].keys, node.args[1].values):
                if not isinstance(key, ast.Constant) or not isinstance(key.value, str):
                    continue
                for knob, value in _literal_items(table):
                    knobs.setdefault(knob, {})[key.value] = value
    return knobs


def _literal_items(node: ast.AST) -> list[tuple[str, Any]]:
    pairs: list[tuple[str, ast.AST]] = []
    if isinstance(node, ast.Dict):
        pairs = [(k.value, v) for k, v in zip(node.keys, node.values)
                 if isinstance(k, ast.Constant) and isinstance(k.value, str)]
    elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "dict":
        pairs = [(kw.arg, kw.value) for kw in node.keywords if kw.arg]
    items = []
    for name, value in pairs:
        try:
            items.append((name, ast.literal_eval(value)))
        except ValueError:
            continue
    return items


def _type_of(values: list[Any]) -> str | None:
    """The annotation every value fits (``int``, ``float``, ``list[int]``, ...), or None."""
    def one(v: Any) -> str | None:
        if isinstance(v, bool):
            return "bool"
        if isinstance(v, int):
            return "int"
        if isinstance(v, float):
            return "float"
        if isinstance(v, str):
            return "str"
        if isinstance(v, list) and v:  # a tuple: left untyped (a reader's tuple would not match list)
            inner = _type_of(list(v))
            return f"list[{inner}]" if inner and "|" not in inner and "list" not in inner else None
        return None
    kinds = {one(v) for v in values}
    if None in kinds or not kinds:
        return None
    if kinds <= {"int", "float"}:
        return "float" if "float" in kinds else "int"
    if kinds <= {"list[int]", "list[float]"}:
        return "list[float]" if "list[float]" in kinds else "list[int]"
    return kinds.pop() if len(kinds) == 1 else None


def _positive(values: list[Any]) -> bool:
    flat = [x for v in values for x in (v if isinstance(v, (list, tuple)) else [v])]
    return bool(flat) and all(isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0 for x in flat)


def with_profiles(params: dict[str, Parameter], table: dict[str, dict[str, Any]]) -> dict[str, Parameter]:
    """Attach each knob's per-profile values; type (and bound) the unannotated ``None`` ones."""
    out = {}
    for name, param in params.items():
        values = table.get(name)
        if values is None:
            out[name] = param
            continue
        param = replace(param, profile_values=dict(values))
        kind = _type_of(list(values.values()))
        if param.annotation is None and param.default is None and kind is not None:
            extra: dict[str, Any] = {}
            if param.low is None and param.choices is None and _positive(list(values.values())):
                extra = {"low": 0.0, "high": math.inf, "low_open": True, "high_open": True}
            param = replace(param, annotation=f"{kind} | None", inferred=True, **extra)
        out[name] = param
    return out


def effective_values(params: dict[str, Parameter], given: dict[str, Any]) -> dict[str, Any]:
    """Each parameter's value in a run: the one given, else its profile's, else its default."""
    profile = given.get("profile") or (params["profile"].default if "profile" in params else "cpu")
    out = {}
    for name, param in params.items():
        value = given.get(name)
        if value is None and param.profile_values:
            value = param.profile_values.get(profile)
        out[name] = param.default if value is None else value
    return out
