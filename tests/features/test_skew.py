"""Served-vs-training skew uses monitoring's drift tests: same distribution passes, a shifted
one is flagged; logged inputs become columns (non-numbers as missing)."""

from __future__ import annotations

import json

import numpy as np

from medops.features.skew import served_skew, served_values


def test_a_shifted_served_feature_is_flagged_and_a_same_one_is_not() -> None:
    """Served values from the training distribution pass; shifted by 2 sd they drift."""
    rng = np.random.default_rng(3)
    training = {"hr": rng.normal(80, 10, 2000).tolist(), "bmi": rng.normal(27, 4, 2000).tolist()}
    served: dict[str, list[float | None]] = {
        "hr": rng.normal(80, 10, 1000).tolist(),
        "bmi": rng.normal(35, 4, 1000).tolist(),
    }
    result = {r.feature: r for r in served_skew(training, served)}
    assert result["bmi"].drifted
    assert not result["hr"].drifted
    assert result["hr"].training_rows == 2000
    assert result["hr"].served_rows == 1000
    assert {t["test"] for t in result["bmi"].tests} >= {"ks", "psi"}


def test_logged_inputs_become_columns() -> None:
    """Each logged record's numbers fill the columns; text, booleans and absences are None."""
    rows = [json.dumps({"hr": 70, "bmi": 22.5}), json.dumps({"hr": "high", "bmi": True})]
    assert served_values(rows, ["hr", "bmi", "sbp"]) == {
        "hr": [70.0, None],
        "bmi": [22.5, None],
        "sbp": [None, None],
    }
