"""On-demand features applied to a frame (offline) and to one request (online), by the one
evaluator of :mod:`medops.features.expressions`.

Both sides turn their inputs into the same columns (:func:`expressions.as_column`'s rule: text
as objects with None, everything else as float64 with NaN) and turn the answer back the same way
(:func:`finish`), so the value a model was trained on is the value it is served.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

import numpy as np
import polars as pl

from medops.errors import FieldError, InvalidInputError
from medops.features.expressions import (
    Column,
    Expression,
    ExpressionError,
    compile_expression,
    evaluate,
)
from medops.features.expressions import evaluate_row as _evaluate_row
from medops.features.schemas import FeatureRepo, FeatureView, OnDemandFeature, Value


@cache
def _compiled(text: str) -> Expression:
    return compile_expression(text)


def input_dtypes(odf: OnDemandFeature, repo: FeatureRepo) -> dict[str, str]:
    """The declared dtype of every name the expression reads."""
    dtypes: dict[str, str] = {r.name: r.dtype for r in odf.request}
    for alias, ref in odf.features.items():
        view_name, _, feature_name = ref.partition(":")
        view: FeatureView | None = repo.view(view_name)
        feature = view.feature(feature_name) if view is not None else None
        dtypes[alias] = feature.dtype if feature is not None else "float64"
    return dtypes


def _frame_column(series: pl.Series, dtype: str) -> Column:
    if dtype == "string":
        return np.asarray(series.cast(pl.Utf8).to_numpy(), dtype=object)
    return np.asarray(series.cast(pl.Float64).to_numpy(), dtype=np.float64)


def finish(values: Column, dtype: str) -> list[Value]:
    """The evaluator's answer as Python values of the feature's dtype (None for missing)."""
    floats = np.asarray(values, dtype=np.float64)
    out: list[Value] = []
    for v in floats.tolist():
        if v != v:  # NaN: missing  # noqa: PLR0124
            out.append(None)
        elif dtype == "int64":
            out.append(int(v))
        elif dtype == "bool":
            out.append(v != 0)
        else:
            out.append(float(v))
    return out


_POLARS = {"float64": pl.Float64, "int64": pl.Int64, "bool": pl.Boolean}


def evaluate_frame(
    odf: OnDemandFeature, repo: FeatureRepo, columns: Mapping[str, pl.Series], n: int
) -> pl.Series:
    """The on-demand feature over ``n`` rows; ``columns`` maps each request value's name and
    each input alias to its column."""
    expression = _compiled(odf.expression)
    dtypes = input_dtypes(odf, repo)
    env = {name: _frame_column(columns[name], dtypes[name]) for name in expression.names}
    try:
        result = np.asarray(evaluate(expression, env, n), dtype=np.float64)
    except (ExpressionError, ValueError, TypeError) as exc:
        raise _failed(odf, exc) from None
    return pl.Series(odf.name, finish(result, odf.dtype), dtype=_POLARS[odf.dtype])


def evaluate_row(odf: OnDemandFeature, repo: FeatureRepo, values: Mapping[str, Any]) -> Value:
    """The on-demand feature for one request: ``values`` maps each request value's name and
    each input alias to its value (None for missing)."""
    expression = _compiled(odf.expression)
    try:
        answer = _evaluate_row(expression, values, input_dtypes(odf, repo))
    except (ExpressionError, ValueError, TypeError) as exc:
        raise _failed(odf, exc) from None
    return finish(answer, odf.dtype)[0]


def _failed(odf: OnDemandFeature, exc: Exception) -> InvalidInputError:
    """An expression that cannot be evaluated on these values (text in arithmetic, say)."""
    reason = f"on-demand feature {odf.name} cannot be computed: {exc}"
    return InvalidInputError(reason, errors=[FieldError(odf.name, reason)])
