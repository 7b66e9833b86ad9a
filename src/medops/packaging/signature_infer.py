"""A model signature inferred from sample rows, and sample rows as typed columns.

Names come from the DataFrame's columns or the mapping's keys (a bare array has no names and is
refused). Types come from dtypes: bool -> boolean, integer -> integer, float -> float, and
strings, objects and pandas categoricals -> category with the sorted distinct values.
``minimum``/``maximum`` of numeric features are the smallest and largest values observed in
the sample, not widened: the server refuses prediction rows outside them, so infer from a
sample that covers the population the model will see (or pass a signature).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import ValidationError

from medops.core.signature import (
    FEATURE_NAME_PATTERN,
    FeatureSpec,
    ModelSignature,
    OutputSpec,
)
from medops.errors import FieldError, PackagingError

MAX_CATEGORIES = 1000


def is_frame(sample: object) -> bool:
    """A pandas DataFrame (duck-typed: pandas is optional on the client)."""
    return hasattr(sample, "columns") and hasattr(sample, "iloc") and hasattr(sample, "dtypes")


def sample_columns(sample: Any) -> dict[str, np.ndarray]:
    """The sample as named, typed columns: float64, int64, bool or object (categories)."""
    if is_frame(sample):
        columns = {str(name): _frame_column(str(name), sample[name]) for name in sample.columns}
    elif isinstance(sample, Mapping):
        columns = {str(name): _list_column(str(name), values) for name, values in sample.items()}
    else:
        msg = (
            f"a sample of type {type(sample).__name__} has no feature names; give a pandas "
            "DataFrame or a mapping of feature name to values"
        )
        raise PackagingError(msg, errors=[FieldError("sample", msg)])
    lengths = {len(v) for v in columns.values()}
    if not columns or lengths == {0}:
        raise PackagingError("the sample has no rows", errors=[FieldError("sample", "empty")])
    if len(lengths) > 1:
        msg = f"the sample's columns differ in length: {sorted(lengths)}"
        raise PackagingError(msg, errors=[FieldError("sample", msg)])
    return columns


def _frame_column(name: str, series: Any) -> np.ndarray:
    kind = getattr(series.dtype, "kind", "O")
    if kind in "iu" and not bool(series.isna().any()):
        return np.asarray(series.to_numpy(dtype=np.int64))
    if kind in "iuf":
        return np.asarray(series.to_numpy(dtype=np.float64, na_value=np.nan))
    if kind == "b":
        if bool(series.isna().any()):
            raise _bad(name, "a boolean column with missing values")
        return np.asarray(series.to_numpy(dtype=bool))
    if kind in "OSU":
        return _objects(name, series.to_numpy(dtype=object).tolist())
    raise _bad(name, f"unsupported dtype {series.dtype}")


def _list_column(name: str, values: Any) -> np.ndarray:
    if isinstance(values, str | bytes) or not hasattr(values, "__len__"):
        raise _bad(name, "expected a list of values")
    array = values if isinstance(values, np.ndarray) else np.asarray(list(values), dtype=object)
    if array.ndim != 1:
        raise _bad(name, "expected a flat list of values")
    if array.dtype.kind in "iufb":
        return array
    items = array.tolist()
    if all(isinstance(v, bool | np.bool_) for v in items):
        return np.asarray(items, dtype=bool)
    if all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in items):
        return np.asarray(items, dtype=np.int64)
    if all(_is_number(v) or v is None for v in items):
        return np.asarray([np.nan if v is None else v for v in items], dtype=np.float64)
    return _objects(name, items)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def _objects(name: str, items: list[Any]) -> np.ndarray:
    """A category column: all strings, or all numbers; no missing values."""
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in items):
        raise _bad(name, "a category column with missing values; fill or drop them")
    if all(isinstance(v, str) for v in items) or all(_is_number(v) for v in items):
        return np.asarray(items, dtype=object)
    raise _bad(name, "a column mixing strings with other values")


def _bad(name: str, reason: str) -> PackagingError:
    return PackagingError(
        f"sample column {name!r}: {reason}", errors=[FieldError(f"sample.{name}", reason)]
    )


def class_labels_of(values: Sequence[Any] | np.ndarray) -> list[int | str]:
    """Class labels as JSON-safe ints or strings (bools and whole floats become ints)."""
    labels: list[int | str] = []
    for value in np.asarray(values).tolist():
        if isinstance(value, bool | int) or (isinstance(value, float) and value.is_integer()):
            labels.append(int(value))
        elif isinstance(value, str):
            labels.append(value)
        else:
            msg = f"class label {value!r} is not an integer or a string"
            raise PackagingError(msg, errors=[FieldError("class_labels", msg)])
    return labels


def _feature(
    name: str,
    column: np.ndarray,
    *,
    demographic: bool,
    bands: Sequence[float] | None,
    limits: Sequence[float] | None,
) -> FeatureSpec:
    kind = column.dtype.kind
    spec: dict[str, Any] = {"name": name, "demographic": demographic}
    if bands is not None:
        spec["bands"] = [float(b) for b in bands]
    if kind == "b":
        spec["type"] = "boolean"
    elif kind in "iuf":
        spec["type"] = "integer" if kind in "iu" else "float"
        if limits is not None:
            spec["minimum"], spec["maximum"] = (float(v) for v in limits)
    else:
        distinct = set(column.tolist())
        if len(distinct) > MAX_CATEGORIES:
            raise _bad(name, f"{len(distinct)} distinct values; is it free text?")
        spec["type"] = "category"
        spec["categories"] = sorted(distinct)
    return FeatureSpec.model_validate(spec)


def infer_signature(
    sample: Any,
    *,
    class_labels: Sequence[Any] | np.ndarray,
    demographic: Sequence[str] = (),
    bands: Mapping[str, Sequence[float]] | None = None,
    layout: Literal["tensor", "columns"] | None = None,
    ranges: Mapping[str, Sequence[float]] | None = None,
) -> ModelSignature:
    """The signature of a model trained on rows like ``sample``.

    Features named in ``demographic`` or ``bands`` are demographic. ``layout`` defaults to
    ``columns`` when a feature has string categories and ``tensor`` otherwise. Allowed ranges
    are domain knowledge, never guessed from the sample (a training sample's min/max would
    refuse legitimate patients): ``ranges={"age": (18, 110)}`` declares them; other numeric
    features get no bounds.
    """
    columns = sample_columns(sample)
    bands = dict(bands or {})
    ranges = dict(ranges or {})
    wanted = set(demographic) | set(bands)
    errors = [
        FieldError(f"sample.{n}", f"the name does not match {FEATURE_NAME_PATTERN}")
        for n in columns
        if not _valid_name(n)
    ]
    errors += [
        FieldError(f"demographic.{n}", "not a column of the sample")
        for n in sorted(wanted)
        if n not in columns
    ]
    errors += [
        FieldError(f"ranges.{n}", "not a column of the sample")
        for n in sorted(ranges)
        if n not in columns
    ]
    errors += [
        FieldError(f"ranges.{n}", "give two numbers: minimum and maximum")
        for n, r in sorted(ranges.items())
        if len(r) != 2
    ]
    if errors:
        raise PackagingError(
            f"cannot infer a signature: {errors[0].field}: {errors[0].reason}"
            + (" (rename the columns)" if errors[0].field.startswith("sample.") else ""),
            errors=errors,
        )
    try:
        inputs = [
            _feature(n, c, demographic=n in wanted, bands=bands.get(n), limits=ranges.get(n))
            for n, c in columns.items()
        ]
        if layout is None:
            strings = any(isinstance(c, str) for f in inputs for c in f.categories or [])
            layout = "columns" if strings else "tensor"
        return ModelSignature(
            inputs=inputs,
            input_layout=layout,
            outputs=OutputSpec(class_labels=class_labels_of(class_labels)),
        )
    except ValidationError as exc:
        problems = [
            FieldError(".".join(str(p) for p in e["loc"]) or "signature", e["msg"])
            for e in exc.errors()
        ]
        raise PackagingError(
            f"cannot infer a signature: {problems[0].field}: {problems[0].reason}",
            errors=problems,
        ) from None


def _valid_name(name: str) -> bool:
    return re.fullmatch(FEATURE_NAME_PATTERN, name) is not None
