"""Packed features (core/packed.py): what the prediction log stores for monitoring unpacks to
the values that were sent, for every feature type; what cannot be packed exactly is refused."""

from __future__ import annotations

import numpy as np
import pytest

from medops.core.packed import FeaturePacker
from medops.core.signature import FeatureSpec, ModelSignature, OutputSpec

SIGNATURE = ModelSignature(
    input_layout="columns",
    inputs=[
        FeatureSpec(name="age", type="integer", minimum=0, maximum=120, demographic=True),
        FeatureSpec(name="lactate", type="float"),
        FeatureSpec(name="smoker", type="boolean"),
        FeatureSpec(name="ward", type="category", categories=["icu", "er", "general"]),
        FeatureSpec(name="stage", type="category", categories=[1, 2, 3.5]),
    ],
    outputs=OutputSpec(class_labels=[0, 1], positive_class=1),
)
RECORDS = [
    {"age": 71, "lactate": 2.25, "smoker": True, "ward": "icu", "stage": 3.5},
    {"age": 0, "lactate": -0.0, "smoker": False, "ward": "general", "stage": 1},
    {"age": 120, "lactate": 1e300, "smoker": 1, "ward": "er", "stage": 2},
]


def test_records_unpack_to_the_values_sent() -> None:
    """Numbers come back as arrays (integers as int64), booleans and categories as the values
    of the signature; feature order is the signature's."""
    packer = FeaturePacker(SIGNATURE)
    rows = [packer.pack(r) for r in RECORDS]
    assert all(isinstance(row, bytes) and len(row) == 8 * 5 for row in rows)
    columns = packer.unpack([row for row in rows if row is not None])
    assert list(columns) == ["age", "lactate", "smoker", "ward", "stage"]
    age = columns["age"]
    assert isinstance(age, np.ndarray)
    assert age.dtype == np.int64
    assert age.tolist() == [71, 0, 120]
    lactate = columns["lactate"]
    assert isinstance(lactate, np.ndarray)
    assert lactate.dtype == np.float64
    assert lactate.tolist() == [2.25, -0.0, 1e300]
    assert columns["smoker"] == [True, False, True]
    assert columns["ward"] == ["icu", "general", "er"]
    assert columns["stage"] == [3.5, 1, 2]


def test_a_window_of_many_rows_is_one_matrix() -> None:
    """Ten thousand random rows round-trip exactly (float64 is what the row is stored as)."""
    rng = np.random.default_rng(7)
    packer = FeaturePacker(SIGNATURE)
    n = 10_000
    ages = rng.integers(0, 121, n)
    lactates = rng.lognormal(0.5, 0.6, n)
    records = [
        {"age": int(a), "lactate": float(x), "smoker": bool(a % 2), "ward": "er", "stage": 2}
        for a, x in zip(ages, lactates, strict=True)
    ]
    packed = [packer.pack(r) for r in records]
    columns = packer.unpack([p for p in packed if p is not None])
    assert np.array_equal(np.asarray(columns["age"]), ages)
    assert np.array_equal(np.asarray(columns["lactate"]), lactates)
    assert columns["smoker"] == [bool(a % 2) for a in ages]


@pytest.mark.parametrize(
    "change",
    [
        {"ward": "theatre"},  # not one of the categories
        {"stage": True},  # a boolean is not the category 1
        {"lactate": "high"},  # not a number
        {"age": 10**400},  # beyond float range
    ],
    ids=["unknown-category", "boolean-as-category", "text-as-number", "overflow"],
)
def test_what_cannot_be_packed_exactly_is_refused(change: dict[str, object]) -> None:
    """The log then keeps the JSON only, and readers parse it for that row."""
    assert FeaturePacker(SIGNATURE).pack(RECORDS[0] | change) is None


def test_a_missing_feature_is_refused() -> None:
    record = dict(RECORDS[0])
    del record["ward"]
    assert FeaturePacker(SIGNATURE).pack(record) is None


def test_a_row_read_back_as_nan_is_missing_not_a_category() -> None:
    """A NaN (which validation never lets in) unpacks as a missing value, never as a wrong
    category or a wrong boolean."""
    packer = FeaturePacker(SIGNATURE)
    row = np.array([np.nan, np.nan, np.nan, np.nan, 7.0], dtype="<f8").tobytes()
    columns = packer.unpack([row])
    assert np.isnan(np.asarray(columns["age"], dtype=float)[0])
    assert columns["smoker"] == [None]
    assert columns["ward"] == [None]
    assert columns["stage"] == [None]
