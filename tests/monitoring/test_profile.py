"""The reference profile of a model version: built from its evaluation rows and scores,
stored as JSON, read back identical."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medops.core.onnx_model import OnnxModel
from medops.errors import InvalidInputError
from medops.monitoring.drift import CategoricalReference, NumericReference, numeric_drift
from medops.monitoring.profile import ReferenceProfile
from tests.helpers import model_data


def evaluation() -> tuple[ReferenceProfile, dict[str, list[float]]]:
    """The diabetes model's profile on its evaluation split."""
    pkg = model_data.package()
    _, x_eval, _, y_eval = model_data.frames()
    columns = {name: x_eval[name].tolist() for name in x_eval.columns}
    scores = OnnxModel(pkg.onnx, pkg.signature).positive_scores(columns)
    profile = ReferenceProfile.build(
        pkg.signature,
        columns,
        scores,
        [bool(v) for v in y_eval],
        baseline={"auroc": 0.8, "accuracy": 0.7},
    )
    return profile, columns


def test_a_profile_holds_every_feature_scores_labels_and_the_multivariate_reference() -> None:
    """One reference per signature feature, the score and label references, PCA, the
    baseline and the demographic features; the reference scores are the model's own."""
    profile, columns = evaluation()
    pkg = model_data.package()
    assert set(profile.features) == set(pkg.signature.feature_names)
    assert all(isinstance(r, NumericReference) for r in profile.features.values())
    assert profile.rows == len(columns["age"])
    assert profile.pca is not None
    assert set(profile.demographic) == {"sex", "age"}
    assert profile.prevalence is not None
    assert 0.3 < profile.prevalence < 0.7  # binarized at the median
    assert profile.baseline["auroc"] == 0.8
    bmi = profile.features["bmi"]
    assert isinstance(bmi, NumericReference)
    same = numeric_drift(bmi, np.asarray(columns["bmi"]), feature="bmi")
    assert {r.test: r.statistic for r in same}["ks"] == 0.0


def test_a_profile_survives_json_unchanged() -> None:
    """to_dict -> JSON -> from_dict -> to_dict is the identity."""
    profile, _ = evaluation()
    stored = json.dumps(profile.to_dict())
    assert ReferenceProfile.from_dict(json.loads(stored)).to_dict() == json.loads(stored)


def test_categorical_features_and_small_data_are_handled() -> None:
    """A category feature gets a categorical reference; too few rows for PCA is a note,
    not a failure; a feature missing from the data, or a malformed profile, is refused."""
    pkg = model_data.package()
    signature = pkg.signature.model_copy(
        update={
            "inputs": [
                *pkg.signature.inputs[:2],
                pkg.signature.inputs[2].model_copy(
                    update={"type": "category", "categories": ["a", "b"], "minimum": None,
                            "maximum": None}
                ),
            ]
        }
    )  # fmt: skip
    names = [f.name for f in signature.inputs]
    columns: dict[str, Sequence[Any]] = {
        names[0]: [50.0] * 10,
        names[1]: [1.0] * 10,
        names[2]: ["a", "b"] * 5,
    }
    profile = ReferenceProfile.build(signature, columns, np.linspace(0, 1, 10), None)
    assert isinstance(profile.features[names[2]], CategoricalReference)
    assert profile.pca is None
    assert profile.notes
    assert profile.prevalence is None
    with pytest.raises(InvalidInputError, match="lack features"):
        ReferenceProfile.build(signature, {names[0]: [1.0]}, [0.5], None)
    with pytest.raises(InvalidInputError, match="not a reference profile"):
        ReferenceProfile.from_dict({"format": 1})


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.integers(min_value=-(10**400), max_value=10**400),
            st.booleans(),
            st.none(),
            st.text(max_size=3),
        ),
        max_size=40,
    )
)
def test_as_numbers_reads_numbers_and_nothing_else(values: list[object]) -> None:
    """Plain numbers become floats (integers beyond float range: +-inf), anything else NaN,
    whether the list is all numbers (the fast path) or mixed."""
    from medops.monitoring.profile import as_numbers

    def expected(value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return float("nan")
        try:
            return float(value)
        except OverflowError:
            return float("inf") if value > 0 else float("-inf")

    for sample in (values, [v for v in values if type(v) in (int, float)]):
        got = as_numbers(sample)
        want = np.array([expected(v) for v in sample], dtype=np.float64)
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, want)
