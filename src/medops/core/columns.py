"""Check column-oriented data (``{"age": [...], "sex": [...]}``) against a model signature.

Used for evaluation datasets and prediction requests. Each column is checked at once with
NumPy where its dtype allows; Python lists (parsed JSON) are classified value by value, since
NumPy would silently turn ``[1, "a"]`` into strings and ``[True, 2]`` into integers.

Every problem becomes a ``FieldError``: ``age`` for a whole column (missing, unknown, wrong
length) and ``rows[12].age`` for one value. Only the first few bad rows of each feature are
listed, and at most ``MAX_FIELD_ERRORS`` errors in all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from medops.core.signature import FeatureSpec, ModelSignature
from medops.errors import FieldError, InvalidInputError, clip

MAX_FIELD_ERRORS = 50
ROWS_PER_FEATURE = 5
SCALAR_ROWS = 16  # Python lists this short are checked value by value, without NumPy

# Reason codes per row, by precedence (a lower non-zero code wins).
_OK, _TYPE, _NOT_FINITE, _NOT_INTEGER, _BELOW, _ABOVE, _CATEGORY = range(7)
_NUMBER_TYPES = (int, float, np.integer, np.floating)


def validate_columns(
    signature: ModelSignature,
    columns: Mapping[str, Sequence[object]] | Mapping[str, np.ndarray],
    *,
    n_rows_expected: int | None = None,
) -> None:
    """Raise InvalidInputError listing every bad feature and the first bad rows of each."""
    errors: list[FieldError] = []
    known = set(signature.feature_names)
    errors.extend(
        FieldError(clip(name), "unknown feature: not in the model's signature")
        for name in columns
        if name not in known
    )
    n_rows = n_rows_expected
    for spec in signature.inputs:
        if spec.name not in columns:
            errors.append(FieldError(spec.name, "missing feature"))
            continue
        values = columns[spec.name]
        if isinstance(values, str | bytes) or not hasattr(values, "__len__"):
            errors.append(FieldError(spec.name, "expected a list of values"))
            continue
        if n_rows is None:
            n_rows = len(values)
        if len(values) != n_rows:
            errors.append(FieldError(spec.name, f"has {len(values)} values, expected {n_rows}"))
            continue
        errors.extend(_feature_errors(spec, values))
    if errors:
        total = len(errors)
        if total > MAX_FIELD_ERRORS:
            errors = errors[: MAX_FIELD_ERRORS - 1]
            errors.append(FieldError("rows", f"{total - len(errors)} more problems not listed"))
        first = errors[0]
        raise InvalidInputError(
            f"the data does not fit the model's signature ({total} problem"
            f"{'s' if total > 1 else ''}; first: {first.field}: {first.reason})",
            errors=errors,
        )


def _as_array(values: Sequence[object] | np.ndarray) -> np.ndarray | None:
    """A NumPy view of typed columns (arrays, pandas Series); None for plain Python lists."""
    if isinstance(values, np.ndarray):
        return values
    to_numpy = getattr(values, "to_numpy", None)
    if callable(to_numpy):
        array = to_numpy()
        return array if isinstance(array, np.ndarray) else None
    return None


def _numbers(values: Sequence[object] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(float64 values, mask of values that are not numbers at all)."""
    array = _as_array(values)
    if array is not None and array.dtype.kind in "iuf":
        return array.astype(np.float64), np.zeros(len(array), dtype=bool)
    if array is not None and array.dtype.kind in "bUS":
        return np.full(len(array), np.nan), np.ones(len(array), dtype=bool)
    items = array.tolist() if array is not None else list(values)
    if set(map(type, items)) <= {int, float}:  # the common JSON case, checked at C speed
        try:
            return np.asarray(items, dtype=np.float64), np.zeros(len(items), dtype=bool)
        except OverflowError:
            pass  # an integer too large for a float: find it below
    numbers = np.full(len(items), np.nan)
    not_number = np.zeros(len(items), dtype=bool)
    for i, value in enumerate(items):
        if isinstance(value, _NUMBER_TYPES) and not isinstance(value, bool | np.bool_):
            try:
                numbers[i] = value
            except OverflowError:
                numbers[i] = np.inf
        else:
            not_number[i] = True
    return numbers, not_number


def _booleans(values: Sequence[object] | np.ndarray) -> np.ndarray:
    """Mask of values that are neither booleans nor 0/1."""
    array = _as_array(values)
    if array is not None and array.dtype.kind == "b":
        return np.zeros(len(array), dtype=bool)
    if array is not None and array.dtype.kind in "iuf":
        return ~np.isin(array, (0, 1))
    items = array.tolist() if array is not None else list(values)
    if set(map(type, items)) <= {bool}:
        return np.zeros(len(items), dtype=bool)
    return np.array(
        [
            not (isinstance(v, bool | np.bool_) or (isinstance(v, _NUMBER_TYPES) and v in (0, 1)))
            for v in items
        ],
        dtype=bool,
    )


def _categories(spec: FeatureSpec, values: Sequence[object] | np.ndarray) -> np.ndarray:
    """Mask of values that are not one of the feature's categories."""
    allowed = spec.categories or []
    array = _as_array(values)
    if array is not None and array.dtype.kind in "U" and all(isinstance(c, str) for c in allowed):
        return ~np.isin(array, np.asarray(allowed, dtype=str))
    allowed_set = set(allowed)
    items = array.tolist() if array is not None else list(values)
    strings = any(isinstance(c, str) for c in allowed)
    if strings and set(map(type, items)) <= {str}:
        return np.fromiter((v not in allowed_set for v in items), dtype=bool, count=len(items))
    bad = np.zeros(len(items), dtype=bool)
    for i, value in enumerate(items):
        if isinstance(value, bool | np.bool_) or isinstance(value, str) != strings:
            bad[i] = True
            continue
        try:
            bad[i] = value not in allowed_set
        except TypeError:  # unhashable (a list or a dict)
            bad[i] = True
    return bad


def _codes(spec: FeatureSpec, values: Sequence[object] | np.ndarray) -> np.ndarray:
    if spec.type == "category":
        return np.where(_categories(spec, values), _CATEGORY, _OK)
    if spec.type == "boolean":
        return np.where(_booleans(values), _TYPE, _OK)
    numbers, not_number = _numbers(values)
    codes = np.full(len(numbers), _OK)
    with np.errstate(invalid="ignore"):
        if spec.maximum is not None:
            codes[numbers > spec.maximum] = _ABOVE
        if spec.minimum is not None:
            codes[numbers < spec.minimum] = _BELOW
        if spec.type == "integer":
            finite = np.isfinite(numbers)
            codes[finite & (np.floor(numbers) != numbers)] = _NOT_INTEGER
    codes[~np.isfinite(numbers)] = _NOT_FINITE
    codes[not_number] = _TYPE
    return codes


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, float | np.floating):
        return f"{float(value):g}"
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= 40 else text[:37] + "..."


def _reason(spec: FeatureSpec, code: int, value: object) -> str:
    shown = _describe(value)
    if code == _TYPE:
        wanted = "a boolean" if spec.type == "boolean" else "a number"
        return "missing value" if value is None else f"expected {wanted}, got {shown}"
    if code == _NOT_FINITE:
        return f"expected a finite number, got {shown}"
    if code == _NOT_INTEGER:
        return f"expected an integer, got {shown}"
    if code == _BELOW:
        return f"{shown} is below the minimum {spec.minimum:g}"
    if code == _ABOVE:
        return f"{shown} is above the maximum {spec.maximum:g}"
    return f"{shown} is not one of the categories {_listing(spec.categories)}"


def _listing(categories: Sequence[Any] | None) -> str:
    shown = [repr(c) for c in (categories or [])[:10]]
    more = len(categories or []) - len(shown)
    return "[" + ", ".join(shown) + (f", ... {more} more" if more > 0 else "") + "]"


def _scalar_code(spec: FeatureSpec, value: object) -> int:
    """``_codes`` for one Python value, without NumPy: the same code, by the same rules
    (a prediction request holds a record or a few; arrays cost more than they save there)."""
    if spec.type == "category":
        return _CATEGORY if _bad_category(spec, value) else _OK
    if spec.type == "boolean":
        ok = isinstance(value, bool | np.bool_) or (
            isinstance(value, _NUMBER_TYPES) and value in (0, 1)
        )
        return _OK if ok else _TYPE
    if not isinstance(value, _NUMBER_TYPES) or isinstance(value, bool | np.bool_):
        return _TYPE
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    checks = (
        (not math.isfinite(number), _NOT_FINITE),
        (spec.type == "integer" and not number.is_integer(), _NOT_INTEGER),
        (spec.minimum is not None and number < spec.minimum, _BELOW),
        (spec.maximum is not None and number > spec.maximum, _ABOVE),
    )
    return next((code for failed, code in checks if failed), _OK)


def _bad_category(spec: FeatureSpec, value: object) -> bool:
    allowed = spec.categories or []
    strings = any(isinstance(c, str) for c in allowed)
    if isinstance(value, bool | np.bool_) or isinstance(value, str) != strings:
        return True
    try:
        return value not in allowed
    except TypeError:  # unhashable (a list or a dict)
        return True


def _feature_errors(spec: FeatureSpec, values: Sequence[object] | np.ndarray) -> list[FieldError]:
    if type(values) is list and len(values) <= SCALAR_ROWS:
        codes: Sequence[int] | np.ndarray = [_scalar_code(spec, v) for v in values]
        bad = [i for i, code in enumerate(codes) if code]
    else:
        codes = _codes(spec, values)
        bad = np.flatnonzero(codes).tolist()
    if not bad:
        return []
    array = _as_array(values)
    items: Sequence[object] | np.ndarray = values if array is None else array
    errors = [
        FieldError(f"rows[{i}].{spec.name}", _reason(spec, int(codes[i]), items[i]))
        for i in bad[:ROWS_PER_FEATURE]
    ]
    if len(bad) > ROWS_PER_FEATURE:
        errors.append(
            FieldError(spec.name, f"{len(bad) - ROWS_PER_FEATURE} more bad values in this column")
        )
    return errors
