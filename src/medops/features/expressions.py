"""The expression language of on-demand features, and its one evaluator.

An on-demand feature is a transformation of request values and stored features, written once
and applied identically offline (over a whole training set) and online (over one request).
Users write it as a Python-like expression (``weight_kg / (height_m ** 2)``,
``where(sbp >= 140, 1, 0)``, ``clip(log(creatinine), -3, 3)``) that is parsed with
:mod:`ast` and checked against a small grammar: numbers, strings, booleans, ``None``, the
names of the feature's inputs, arithmetic, comparisons, ``and``/``or``/``not``, ``a if c else
b`` and a fixed table of functions. Nothing else parses (no attributes, subscripts, lambdas,
comprehensions or calls outside the table), so a definition can never run arbitrary code on the
server, and no pickled code is ever accepted.

One evaluator serves both sides: :func:`evaluate` works on numpy columns, and the online path
(:func:`evaluate_row`) wraps each value of the request in a one-element column and calls the
same function, so offline and online cannot drift apart (the test compares them on 10,000
random rows anyway). Missing values are ``NaN`` in numeric columns and ``None`` in string
columns; arithmetic on a missing value gives a missing value; a division by zero gives a
missing value (not an infinity), the same on both sides.

Why not SQL: a SQL transformation would need DuckDB on the serving hot path (~100 us per call
to plan and run a one-row query) and a second engine offline would be a second code path.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Column = npt.NDArray[Any]

MAX_LENGTH = 2000
MAX_NODES = 200

_BINARY: dict[type[ast.operator], Callable[[Column, Column], Column]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Pow: np.power,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Column, Column], Column]] = {
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
}


class ExpressionError(ValueError):
    """Raised when an expression does not parse, uses something outside the language, or
    names an input the feature does not declare."""


def _num(x: Column) -> Column:
    if x.dtype == object:
        raise ExpressionError("a text value cannot be used in arithmetic")
    return x.astype(np.float64, copy=False)


def _missing(x: Column) -> Column:
    if x.dtype == object:
        return np.array([v is None for v in x], dtype=bool)
    if x.dtype.kind == "f":
        return np.isnan(x)
    return np.zeros(x.shape, dtype=bool)


def _guarded(op: Any) -> Callable[[Column, Column], Column]:
    """``op`` where the divisor is not zero; missing where it is (no infinities)."""

    def apply(a: Column, b: Column) -> Column:
        a, b = _num(a), _num(b)
        out = np.full(np.broadcast(a, b).shape, np.nan)
        op(a, b, out=out, where=b != 0)
        return out

    return apply


_div, _floordiv, _mod = _guarded(np.divide), _guarded(np.floor_divide), _guarded(np.mod)


def _safe(fn: Callable[[Column], Column], lower: float | None = None) -> Callable[..., Column]:
    """A one-argument math function that answers missing outside its domain."""

    def apply(x: Column) -> Column:
        x = _num(x)
        ok = ~np.isnan(x) if lower is None else x > lower
        return fn(x, out=np.full(x.shape, np.nan), where=ok)  # type: ignore[call-arg]

    return apply


def _where(cond: Column, a: Column, b: Column) -> Column:
    c = _truth(cond)
    if object in (a.dtype, b.dtype):
        shape = np.broadcast(c, a, b).shape
        out = np.empty(shape, dtype=object)
        out[...] = np.where(c, a.astype(object), b.astype(object))
        return out
    return np.where(c, _num(a), _num(b))


def _coalesce(a: Column, b: Column) -> Column:
    return _where(_missing(a), b, a)


def _clip(x: Column, lo: Column, hi: Column) -> Column:
    return np.clip(_num(x), _num(lo), _num(hi))


def _round(x: Column, digits: Column | None = None) -> Column:
    if digits is None:
        return np.round(_num(x))
    d = np.unique(_num(digits))
    if d.size != 1 or math.isnan(float(d[0])):
        raise ExpressionError("round's digits must be one number")
    return np.round(_num(x), int(d[0]))


def _min(a: Column, b: Column) -> Column:
    return np.minimum(_num(a), _num(b))


def _max(a: Column, b: Column) -> Column:
    return np.maximum(_num(a), _num(b))


# name -> (function, least arguments, most arguments)
FUNCTIONS: dict[str, tuple[Callable[..., Column], int, int]] = {
    "abs": (lambda x: np.abs(_num(x)), 1, 1),
    "log": (_safe(np.log, 0.0), 1, 1),
    "log1p": (_safe(np.log1p, -1.0), 1, 1),
    "exp": (_safe(np.exp), 1, 1),
    "sqrt": (_safe(np.sqrt, -1e-300), 1, 1),
    "floor": (lambda x: np.floor(_num(x)), 1, 1),
    "ceil": (lambda x: np.ceil(_num(x)), 1, 1),
    "round": (_round, 1, 2),
    "min": (_min, 2, 2),
    "max": (_max, 2, 2),
    "clip": (_clip, 3, 3),
    "where": (_where, 3, 3),
    "is_null": (_missing, 1, 1),
    "coalesce": (_coalesce, 2, 2),
}


def _truth(x: Column) -> Column:
    if x.dtype == bool:
        return x
    if x.dtype == object:
        return np.array([bool(v) for v in x], dtype=bool)
    truth: Column = np.nan_to_num(x.astype(np.float64), nan=0.0) != 0
    return truth


@dataclass(frozen=True)
class Expression:
    """A checked expression: its text, its parsed tree and the input names it reads."""

    text: str
    tree: ast.expr
    names: frozenset[str]


def compile_expression(text: str, allowed: frozenset[str] | None = None) -> Expression:
    """Parse and check ``text``; ``allowed`` (when given) is the set of input names it may
    read. Raises :class:`ExpressionError` naming what is wrong."""
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"the expression is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ExpressionError(f"does not parse: {exc.msg}") from None
    names: set[str] = set()
    count = 0
    for node in ast.walk(tree):
        count += 1
        _check(node, names)
    if count > MAX_NODES:
        raise ExpressionError(f"the expression has more than {MAX_NODES} parts")
    if allowed is not None:
        unknown = sorted(names - allowed)
        if unknown:
            raise ExpressionError(
                f"reads {', '.join(unknown)}, which the feature does not declare as inputs"
            )
    return Expression(text=text, tree=tree, names=frozenset(names))


_ALLOWED_NODES = (
    ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.Call, ast.Name,
    ast.Constant, ast.Load, ast.And, ast.Or, ast.Not, ast.USub, ast.UAdd, ast.Div,
    ast.FloorDiv, ast.Mod, *_BINARY, *_COMPARE,
)  # fmt: skip


def _check(node: ast.AST, names: set[str]) -> None:
    if not isinstance(node, _ALLOWED_NODES):
        raise ExpressionError(f"{type(node).__name__} is not allowed in an expression")
    if isinstance(node, ast.Constant) and not (
        node.value is None or isinstance(node.value, bool | int | float | str)
    ):
        raise ExpressionError(f"the constant {node.value!r} is not allowed")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            known = ", ".join(sorted(FUNCTIONS))
            raise ExpressionError(f"only these functions may be called: {known}")
        if node.keywords:
            raise ExpressionError("functions take positional arguments only")
        _fn, least, most = FUNCTIONS[node.func.id]
        if not least <= len(node.args) <= most:
            raise ExpressionError(f"{node.func.id} takes {least}..{most} arguments")
    if isinstance(node, ast.Name) and node.id not in FUNCTIONS:
        if node.id.startswith("_"):
            raise ExpressionError(f"the name {node.id} is not allowed")
        names.add(node.id)
    if isinstance(node, ast.Name) and node.id in FUNCTIONS:
        # a function name used as a value (``abs + 1``) is refused at evaluation; allow it only
        # as a call's target, which _eval never reads as a name
        pass


def _constant(value: object, n: int) -> Column:
    if value is None:
        return np.full(n, np.nan)
    if isinstance(value, str):
        out = np.empty(n, dtype=object)
        out[:] = value
        return out
    if isinstance(value, bool):
        return np.full(n, value, dtype=bool)
    return np.full(n, float(value))  # type: ignore[arg-type]


def _binop(node: ast.BinOp, env: Mapping[str, Column], n: int) -> Column:
    a, b = _eval(node.left, env, n), _eval(node.right, env, n)
    if isinstance(node.op, ast.Div):
        return _div(a, b)
    if isinstance(node.op, ast.FloorDiv):
        return _floordiv(a, b)
    if isinstance(node.op, ast.Mod):
        return _mod(a, b)
    with np.errstate(all="ignore"):
        return _BINARY[type(node.op)](_num(a), _num(b))


def _unary(node: ast.UnaryOp, env: Mapping[str, Column], n: int) -> Column:
    x = _eval(node.operand, env, n)
    if isinstance(node.op, ast.Not):
        return ~_truth(x)
    return -_num(x) if isinstance(node.op, ast.USub) else _num(x)


def _boolop(node: ast.BoolOp, env: Mapping[str, Column], n: int) -> Column:
    parts = [_truth(_eval(v, env, n)) for v in node.values]
    out = parts[0]
    for p in parts[1:]:
        out = (out & p) if isinstance(node.op, ast.And) else (out | p)
    return out


def _compare(node: ast.Compare, env: Mapping[str, Column], n: int) -> Column:
    left = _eval(node.left, env, n)
    result = np.ones(n, dtype=bool)
    for op, right_node in zip(node.ops, node.comparators, strict=True):
        right = _eval(right_node, env, n)
        if (left.dtype == object) != (right.dtype == object):
            raise ExpressionError("a text value can only be compared with text")
        if left.dtype == object and not isinstance(op, ast.Eq | ast.NotEq):
            raise ExpressionError("text can only be compared with == or !=")
        with np.errstate(invalid="ignore"):
            cmp = _COMPARE[type(op)](left, right)
        # a comparison with a missing value is false (where SQL would say unknown)
        result = result & np.asarray(cmp, dtype=bool) & ~_missing(left) & ~_missing(right)
        left = right
    return result


def _ifexp(node: ast.IfExp, env: Mapping[str, Column], n: int) -> Column:
    return _where(_eval(node.test, env, n), _eval(node.body, env, n), _eval(node.orelse, env, n))


def _call(node: ast.Call, env: Mapping[str, Column], n: int) -> Column:
    if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
        raise ExpressionError("only the listed functions may be called")
    fn = FUNCTIONS[node.func.id][0]
    args = [_eval(a, env, n) for a in node.args]
    with np.errstate(all="ignore"):
        return np.asarray(fn(*args))


def _name(node: ast.Name, env: Mapping[str, Column], n: int) -> Column:
    del n
    if node.id not in env:
        raise ExpressionError(f"no value for {node.id}")
    return env[node.id]


def _const(node: ast.Constant, env: Mapping[str, Column], n: int) -> Column:
    del env
    return _constant(node.value, n)


_EVAL: dict[type[ast.expr], Callable[[Any, Mapping[str, Column], int], Column]] = {
    ast.Constant: _const,
    ast.Name: _name,
    ast.BinOp: _binop,
    ast.UnaryOp: _unary,
    ast.BoolOp: _boolop,
    ast.Compare: _compare,
    ast.IfExp: _ifexp,
    ast.Call: _call,
}


def _eval(node: ast.expr, env: Mapping[str, Column], n: int) -> Column:
    step = _EVAL.get(type(node))
    if step is None:
        raise ExpressionError(f"{type(node).__name__} is not allowed in an expression")
    return step(node, env, n)


def evaluate(expression: Expression, columns: Mapping[str, Column], n: int) -> Column:
    """The expression over ``n`` rows of ``columns`` (numeric columns as float64 with NaN for
    missing, text columns as object arrays with None): always an array of ``n`` values."""
    out = _eval(expression.tree, columns, n)
    return np.broadcast_to(out, (n,)).copy() if out.shape != (n,) else out


def evaluate_row(
    expression: Expression, values: Mapping[str, object], dtypes: Mapping[str, str]
) -> Column:
    """The expression for one row: each value is put in a one-element column (by its declared
    dtype, as the offline side converts a frame's column) and the same :func:`evaluate` runs,
    so the online answer is the offline answer for that row."""
    columns = {name: as_column(dtypes[name], [values.get(name)]) for name in expression.names}
    return evaluate(expression, columns, 1)


def as_column(dtype: str, values: list[object]) -> Column:
    """Python values of a declared dtype as the column :func:`evaluate` reads: text as an object
    array with None for missing, everything else (numbers, booleans) as float64 with NaN."""
    if dtype == "string":
        out = np.empty(len(values), dtype=object)
        out[:] = [None if v is None else str(v) for v in values]
        return out
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)  # type: ignore[arg-type]
