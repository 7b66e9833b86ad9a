"""Labeled evaluation sets: CSV text parsed into typed columns by a model signature.

Only the signature's features and the label column are kept; other columns (a record number, a
patient identifier) are dropped before anything is stored. The kept columns are written back
as canonical CSV, whose SHA-256 identifies the dataset in the report.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from typing import Any

from medops.core.signature import FeatureSpec, ModelSignature
from medops.errors import FieldError, InvalidInputError, clip

MAX_ERRORS = 50
_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n"}


@dataclass(frozen=True)
class LabeledData:
    """Typed feature columns, the labels as given, and the canonical CSV of both."""

    columns: dict[str, list[Any]]
    labels: list[str]
    canonical_csv: bytes
    ignored_columns: list[str]

    @property
    def rows(self) -> int:
        return len(self.labels)


def _convert(spec: FeatureSpec, text: str) -> Any:
    value = text.strip()
    if spec.type == "category":
        for category in spec.categories or []:
            if str(category) == value:
                return category
        return value  # validate_columns reports it as an unknown category
    if value == "":
        raise ValueError("empty value")
    if spec.type == "boolean":
        low = value.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(f"{clip(value)!r} is not a boolean")
    if "_" in value:  # float() would read 1_5 as 15
        raise ValueError(f"{clip(value)!r} is not a number")
    number = float(value)
    if spec.type == "integer":
        if not number.is_integer():
            raise ValueError(f"{clip(value)!r} is not an integer")
        return int(number)
    return number


def _index(header: list[str], wanted: list[str]) -> dict[str, int]:
    missing = [n for n in wanted if n not in header]
    if missing:
        raise InvalidInputError(
            f"the dataset lacks column(s) {', '.join(missing)}",
            errors=[FieldError(f"columns.{n}", "missing") for n in missing],
        )
    if len(set(header)) != len(header):
        raise InvalidInputError(
            "the dataset repeats a column name", errors=[FieldError("columns", "duplicate name")]
        )
    return {name: header.index(name) for name in wanted}


def _typed_row(
    signature: ModelSignature,
    row: list[str],
    row_number: int,
    index: dict[str, int],
    columns: dict[str, list[Any]],
    errors: list[FieldError],
) -> None:
    for spec in signature.inputs:
        try:
            value = _convert(spec, row[index[spec.name]])
        except ValueError as exc:
            errors.append(FieldError(f"rows[{row_number}].{spec.name}", str(exc)))
            value = math.nan
        columns[spec.name].append(value)


def parse_csv(data: bytes, signature: ModelSignature, *, label_column: str) -> LabeledData:
    """Parse a labeled CSV (header row first) into typed columns; every bad cell is listed."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            "the dataset is not UTF-8 text", errors=[FieldError("dataset", "not UTF-8")]
        ) from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except (StopIteration, csv.Error) as exc:
        raise InvalidInputError(
            "the dataset is empty", errors=[FieldError("dataset", "no header row")]
        ) from exc
    names = signature.feature_names
    index = _index(header, [*names, label_column])
    columns: dict[str, list[Any]] = {n: [] for n in names}
    labels: list[str] = []
    errors: list[FieldError] = []
    try:
        for row_number, row in enumerate(reader):
            if not row:
                continue
            if len(row) != len(header):
                reason = f"has {len(row)} cells, header has {len(header)}"
                errors.append(FieldError(f"rows[{row_number}]", reason))
            else:
                _typed_row(signature, row, row_number, index, columns, errors)
                labels.append(row[index[label_column]].strip())
            if len(errors) >= MAX_ERRORS:
                break
    except csv.Error as exc:
        raise InvalidInputError(
            f"the dataset is not valid CSV: {exc}", errors=[FieldError("dataset", str(exc))]
        ) from exc
    if errors:
        raise InvalidInputError(
            f"{len(errors)} bad value(s) in the dataset, first: "
            f"{errors[0].field}: {errors[0].reason}",
            errors=errors,
        )
    if not labels:
        raise InvalidInputError(
            "the dataset has no rows", errors=[FieldError("dataset", "no rows")]
        )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*names, label_column])
    for i, label in enumerate(labels):
        writer.writerow([*(columns[n][i] for n in names), label])
    ignored = [h for h in header if h not in index]
    return LabeledData(columns, labels, out.getvalue().encode(), ignored)


def binary_labels(labels: list[str], signature: ModelSignature, *, label_column: str) -> list[int]:
    """1 where the label is the positive class, 0 where it is another declared class."""
    known = {str(c): c for c in signature.outputs.class_labels}
    positive = str(signature.outputs.positive)
    errors = [
        FieldError(f"rows[{i}].{label_column}", f"{clip(value)!r} is not one of the class labels")
        for i, value in enumerate(labels)
        if value not in known
    ][:MAX_ERRORS]
    if errors:
        raise InvalidInputError(
            f"{len(errors)} label(s) are not class labels {sorted(known)}", errors=errors
        )
    return [1 if value == positive else 0 for value in labels]
