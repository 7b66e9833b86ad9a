"""Tabular profiles: the schema and statistics of CSV, TSV and Parquet files, checked against
numpy, and never a raw value of an identifier-like column or a rare value."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest
from sklearn.datasets import load_diabetes  # type: ignore[import-untyped]

from medops.datasets.tabular import MIN_COUNT, TOP_N, describe, table_format
from medops.errors import InvalidInputError


def _diabetes_csv(separator: str = ",") -> tuple[bytes, np.ndarray]:
    data = load_diabetes()
    rows = ["age,bmi,target,patient_name,group,mrn".replace(",", separator)]
    for i, (features, target) in enumerate(zip(data.data, data.target, strict=True)):
        group = "treated" if i % 3 else "control"
        values = [features[0], features[2], target, f"Name{i}^Person", group, f"MRN{i:06d}"]
        rows.append(separator.join(str(v) for v in values))
    return ("\n".join(rows) + "\n").encode(), data.target


def test_a_csv_gets_types_counts_and_statistics_equal_to_numpys() -> None:
    """Row count, types, nulls, distinct, min/max/mean/std (ddof 1) match numpy."""
    data, target = _diabetes_csv()
    profile = describe("diabetes.csv", data)
    assert profile.format == "csv"
    assert profile.rows == len(target) == 442
    columns = {c.name: c for c in profile.columns}
    assert columns["target"].type == "double"
    assert columns["target"].count == 442
    assert columns["target"].nulls == 0
    assert columns["target"].distinct == len(np.unique(target))
    assert columns["target"].min == pytest.approx(target.min())
    assert columns["target"].max == pytest.approx(target.max())
    assert columns["target"].mean == pytest.approx(target.mean())
    assert columns["target"].std == pytest.approx(target.std(ddof=1))
    assert [(t.value, t.count) for t in columns["group"].top] == [
        ("treated", 294),
        ("control", 148),
    ]


def test_identifier_like_columns_show_no_value() -> None:
    """Columns named like identifiers, or strings nearly all distinct, show no top values
    and no range; the profile's text holds none of their values."""
    data, _ = _diabetes_csv()
    profile = describe("diabetes.csv", data)
    columns = {c.name: c for c in profile.columns}
    for name in ("patient_name", "mrn"):
        assert columns[name].identifier_like is True
        assert columns[name].top == []
        assert columns[name].min is None
    text = profile.model_dump_json()
    assert "Name1^" not in text
    assert "MRN000" not in text
    notes = describe("n.csv", b"note\n" + b"".join(b"free text %d\n" % i for i in range(50)))
    assert notes.columns[0].identifier_like is True


def test_rare_values_are_never_listed_and_top_values_are_bounded() -> None:
    """A value held by fewer than MIN_COUNT rows is not shown; at most TOP_N are."""
    values = [f"v{i}" for i in range(10) for _ in range(MIN_COUNT + i)] + ["rare"] * 2
    data = ("kind\n" + "\n".join(values) + "\n").encode()
    top = describe("k.csv", data).columns[0].top
    assert len(top) == TOP_N
    assert "rare" not in [t.value for t in top]
    assert top[0].value == "v9"


def test_tsv_and_parquet_give_the_same_profile_as_csv(tmp_path: Path) -> None:
    """The same table as TSV bytes and as a Parquet file on disk profiles the same."""
    data, _ = _diabetes_csv()
    tsv, _ = _diabetes_csv("\t")
    table = pa.csv.read_csv(io.BytesIO(data))
    path = tmp_path / "d.parquet"
    pq.write_table(table, path)
    csv_profile = describe("d.csv", data)
    for other in (describe("d.tsv", tsv), describe("d.parquet", path)):
        assert other.rows == csv_profile.rows
        assert other.columns == csv_profile.columns


def test_nulls_and_empty_columns() -> None:
    """Missing values are counted as nulls; an all-null column has no statistics."""
    profile = describe("x.csv", b"a,b\n1,\n,\n3,\n")
    a, b = profile.columns
    assert (a.count, a.nulls, a.min, a.max) == (2, 1, 1.0, 3.0)
    assert (b.count, b.nulls, b.mean) == (0, 3, None)


@pytest.mark.parametrize(
    ("name", "data", "why"),
    [
        ("scan.dcm", b"x", "not a .csv, .tsv or .parquet file"),
        ("broken.parquet", b"not parquet", "not a readable PARQUET file"),
        ("ragged.csv", b"a,b\n1,2,3\n", "not a readable CSV file"),
    ],
)
def test_bad_input_is_refused_naming_the_file(name: str, data: bytes, why: str) -> None:
    """Unsupported or unreadable files raise InvalidInputError naming the file."""
    with pytest.raises(InvalidInputError, match=f"^{name}: {why}"):
        describe(name, data)


def test_table_format_by_suffix() -> None:
    """The format follows the file's suffix, case-insensitively; others are not tabular."""
    assert [table_format(n) for n in ("a.CSV", "b.tsv", "c.parquet", "d.dcm")] == [
        "csv",
        "tsv",
        "parquet",
        None,
    ]
