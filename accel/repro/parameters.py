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
(every element, for a list). A parameter without an annotation takes its default's type.
"""
from __future__ import annotations

import ast
import io
import math
import re
import tokenize
from dataclasses import dataclass
from typing import Any

_SCALARS = {"int": int, "float": float, "str": str, "bool": bool, "dict": dict, "None": type(None)}
_RANGE = re.compile(r"([\[(])\s*(-?[\d.e+-]+|-?inf)\s*,\s*(-?[\d.e+-]+|-?inf)\s*([\])])\s*$")
_CHOICES = re.compile(r"\{([^{}]*)\}\s*$")


@dataclass(frozen=True)
class Parameter:
    """One parameter of a notebook: its default, its type and its valid values."""
    name: str
    default: Any
    annotation: str | None = None
    help: str = ""
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] | None = None

    def describe(self) -> str:
        """The valid values in words, for error messages."""
        parts = [self.annotation or type(self.default).__name__]
        if self.low is not None:
            parts.append(f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}")
        if self.choices:
            parts.append(f"one of {', '.join(self.choices)}")
        return " ".join(parts)

    def check(self, value: Any, notebook: str = "notebook") -> Any:
        """``value`` if it is valid for this parameter, else a ValueError naming it and the valid values."""
        where = f"parameter {self.name!r} of {notebook}"
        if not _matches(value, self.type_expr()):
            raise ValueError(f"{where} expects {self.describe()} (default {self.default!r}), "
                             f"got {type(value).__name__} {value!r}")
        for item in (value if isinstance(value, list) else [value]):
            if item is None:
                continue
            if self.low is not None and isinstance(item, (int, float)) and not isinstance(item, bool):
                below = item <= self.low if self.low_open else item < self.low
                above = item >= self.high if self.high_open else item > self.high
                if below or above or (isinstance(item, float) and math.isnan(item)):
                    raise ValueError(f"{where} must be {self.describe()}, got {value!r}")
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


def _comments(source: str) -> dict[int, str]:
    out = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            out[tok.start[0]] = tok.string.lstrip("#").strip()
    return out


def _constraint(comment: str) -> dict[str, Any]:
    m = _RANGE.search(comment)
    if m:
        return {"low": float(m.group(2)), "high": float(m.group(3)),
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
        param = Parameter(name, default, annotation, comment, **_constraint(comment))
        if annotation is not None:
            param.type_expr()  # an unsupported annotation is the notebook's error, found now
        params[name] = param
    return params
