"""The schema and summary statistics of a tabular file (CSV, TSV, Parquet), read with pyarrow.

A version's page shows each column's type, count, nulls and distinct values, the range, mean
and standard deviation of numbers and the most frequent values of strings, so a reviewer sees
what the data is without opening it. It must not become a way to read patient data, so:

- A column that looks like an identifier (its name says so: id, name, mrn, birth, address,
  phone, email...; or nearly every string value is distinct) shows no value at all: no top
  values, no minimum or maximum.
- A value is listed among the top values only if at least ``MIN_COUNT`` rows share it (a
  value held by one or two patients is itself identifying), and at most ``TOP_N`` are listed.
- Distinct counts are exact up to ``DISTINCT_LIMIT`` and reported as that bound above it.
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path
from typing import Literal

# pyarrow ships no type information (no py.typed): its calls are Any to mypy.
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.csv as pa_csv  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field

from medops.errors import FieldError, InvalidInputError

TOP_N = 5
MIN_COUNT = 5
DISTINCT_LIMIT = 100_000
IDENTIFIER_DISTINCT_RATIO = 0.9  # strings nearly all distinct: names, IDs, free text
_IDENTIFIER_NAME = re.compile(
    r"(^|[^a-z])(id|ids|uid|uuid|guid|mrn|ssn|nhs|nin|name|names|first|last|surname|"
    r"given|family|birth|dob|address|street|zip|postcode|postal|phone|tel|mobile|email|"
    r"mail|accession|patient|encounter|visit|ip|url)([^a-z]|$)|"
    r"(patientid|patient_id|birthdate|dateofbirth|firstname|lastname|fullname|zipcode)"
)
TableFormat = Literal["csv", "tsv", "parquet"]


class TopValue(BaseModel):
    """A frequent value of a column and how many rows hold it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: str
    count: int


class ColumnProfile(BaseModel):
    """One column: its type and statistics (values only where they are safe to show)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    type: str  # the Arrow type: int64, double, string, timestamp[s], bool ...
    count: int = Field(ge=0)  # non-null values
    nulls: int = Field(ge=0)
    distinct: int = Field(ge=0)
    distinct_capped: bool = False  # True: at least ``distinct`` (the bound)
    identifier_like: bool = False  # True: no value of this column is shown
    min: float | str | None = None
    max: float | str | None = None
    mean: float | None = None
    std: float | None = None
    top: list[TopValue] = []


class TableProfile(BaseModel):
    """A tabular file's schema and statistics."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    format: TableFormat
    rows: int = Field(ge=0)
    columns: list[ColumnProfile]


def table_format(name: str) -> TableFormat | None:
    """The tabular format of a file by its name, or None when it is not one medops profiles."""
    suffix = Path(name).suffix.lower()
    return {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}.get(suffix)  # type: ignore[return-value]


def describe(name: str, data: bytes | Path) -> TableProfile:
    """The profile of tabular file ``name`` (its bytes, or where to read them)."""
    kind = table_format(name)
    if kind is None:
        reason = "not a .csv, .tsv or .parquet file"
        raise InvalidInputError(f"{name}: {reason}", errors=[FieldError(name, reason)])
    try:
        table = _read(kind, data)
    except (pa.ArrowException, OSError, ValueError) as error:
        reason = f"not a readable {kind.upper()} file ({type(error).__name__})"
        raise InvalidInputError(f"{name}: {reason}", errors=[FieldError(name, reason)]) from None
    return TableProfile(
        name=name,
        format=kind,
        rows=table.num_rows,
        columns=[_column(field.name, table.column(i)) for i, field in enumerate(table.schema)],
    )


def _read(kind: TableFormat, data: bytes | Path) -> pa.Table:
    source = pa.BufferReader(data) if isinstance(data, bytes) else str(data)
    if kind == "parquet":
        return pq.read_table(source)
    options = pa_csv.ParseOptions(delimiter="\t" if kind == "tsv" else ",")
    stream = io.BytesIO(data) if isinstance(data, bytes) else source
    return pa_csv.read_csv(stream, parse_options=options)


def _column(name: str, column: pa.ChunkedArray) -> ColumnProfile:
    kind = column.type
    nulls = column.null_count
    count = len(column) - nulls
    distinct, capped = _distinct(column)
    named_like_id = _IDENTIFIER_NAME.search(name.lower()) is not None
    is_text = pa.types.is_string(kind) or pa.types.is_large_string(kind)
    mostly_distinct = is_text and count >= 10 and distinct >= IDENTIFIER_DISTINCT_RATIO * count
    identifier = named_like_id or mostly_distinct
    profile: dict[str, object] = {
        "name": name,
        "type": str(kind),
        "count": count,
        "nulls": nulls,
        "distinct": distinct,
        "distinct_capped": capped,
        "identifier_like": identifier,
    }
    if identifier or count == 0 or pa.types.is_nested(kind):
        return ColumnProfile.model_validate(profile)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        numbers = pc.cast(column, pa.float64())
        profile |= {
            "min": _finite(pc.min(numbers).as_py()),
            "max": _finite(pc.max(numbers).as_py()),
            "mean": _finite(pc.mean(numbers).as_py()),
            "std": _finite(pc.stddev(numbers, ddof=1).as_py()) if count > 1 else None,
        }
    elif pa.types.is_temporal(kind):
        profile |= {"min": str(pc.min(column).as_py()), "max": str(pc.max(column).as_py())}
    if is_text or pa.types.is_boolean(kind) or pa.types.is_dictionary(kind):
        profile["top"] = _top(column)
    return ColumnProfile.model_validate(profile)


def _distinct(column: pa.ChunkedArray) -> tuple[int, bool]:
    if column.null_count == len(column):
        return 0, False
    try:
        distinct = pc.count_distinct(column, mode="only_valid").as_py()
    except pa.ArrowNotImplementedError:  # nested types (lists, structs): not counted
        return 0, False
    if distinct > DISTINCT_LIMIT:
        return DISTINCT_LIMIT, True
    return int(distinct), False


def _top(column: pa.ChunkedArray) -> list[TopValue]:
    counts = pc.value_counts(column.drop_null())
    pairs = sorted(
        ((str(item["values"].as_py()), int(item["counts"].as_py())) for item in counts),
        key=lambda pair: (-pair[1], pair[0]),
    )
    return [TopValue(value=v, count=c) for v, c in pairs[:TOP_N] if c >= MIN_COUNT]


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)
