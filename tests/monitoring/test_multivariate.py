"""Multivariate drift by PCA reconstruction: a change in how features move together is found
where every per-feature test sees nothing; an unshifted control stays quiet."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medops.errors import InvalidInputError
from medops.monitoring.drift import NumericReference, numeric_drift
from medops.monitoring.multivariate import PcaReference


def sample(n: int, rho: float, seed: int) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """Three correlated measurements (pairwise correlation ``rho``) and a ward category."""
    rng = np.random.default_rng(seed)
    cov = np.full((3, 3), rho) + np.eye(3) * (1 - rho)
    if rho < 0:  # keep the matrix positive definite: only the first pair is anti-correlated
        cov = np.array([[1.0, rho, 0.0], [rho, 1.0, 0.0], [0.0, 0.0, 1.0]])
    values = rng.multivariate_normal([120.0, 80.0, 5.0], cov, size=n) * [15.0, 10.0, 1.0]
    numeric = {"sbp": values[:, 0], "dbp": values[:, 1], "lactate": values[:, 2]}
    return numeric, {"ward": list(rng.choice(["icu", "ed", "gen"], size=n))}


def test_an_unshifted_control_stays_within_the_learned_band() -> None:
    """Same distribution, another seed: the mean error stays inside mean +- 3 sigma."""
    reference = PcaReference.fit(*sample(5000, 0.8, seed=1))
    verdict = reference.drift(*sample(2000, 0.8, seed=2))
    assert verdict["status"] == "ok"
    assert not verdict["drifted"], verdict
    assert verdict["parameters"]["components"] >= 1


def test_a_change_in_correlation_is_found_where_marginals_are_unchanged() -> None:
    """The first two measurements turn from correlated to anti-correlated with the same
    marginals: per-feature PSI and Wasserstein stay under their thresholds, the PCA error
    leaves its band."""
    ref_numeric, ref_categorical = sample(5000, 0.8, seed=1)
    cur_numeric, cur_categorical = sample(2000, -0.8, seed=3)
    for name in ("sbp", "dbp"):
        results = numeric_drift(NumericReference.fit(ref_numeric[name]), cur_numeric[name])
        by_test = {r.test: r for r in results}
        assert not by_test["psi"].drifted
        assert not by_test["wasserstein"].drifted
    reference = PcaReference.fit(ref_numeric, ref_categorical)
    verdict = reference.drift(cur_numeric, cur_categorical)
    assert verdict["drifted"], verdict
    assert verdict["statistic"] > verdict["threshold"][1]


def test_the_fitted_reference_survives_json_and_gives_the_same_error() -> None:
    """to_dict -> JSON -> from_dict reproduces the error exactly."""
    reference = PcaReference.fit(*sample(1000, 0.5, seed=4))
    again = PcaReference.from_dict(json.loads(json.dumps(reference.to_dict())))
    current = sample(300, 0.5, seed=5)
    assert again.error(*current) == reference.error(*current)
    assert again == reference


def test_bad_windows_are_reported_not_raised() -> None:
    """Too few rows: insufficient data, never drifted; NaN, infinities and unseen categories
    are encoded (imputed, all-zero) without crashing; a missing feature is a clear error."""
    reference = PcaReference.fit(*sample(1000, 0.5, seed=6))
    numeric, categorical = sample(10, 0.5, seed=7)
    small = reference.drift(numeric, categorical)
    assert small["status"] == "insufficient-data"
    assert not small["drifted"]
    numeric, categorical = sample(100, 0.5, seed=8)
    numeric["sbp"][:5] = np.nan
    numeric["dbp"][:5] = np.inf
    categorical["ward"][:5] = ["never-seen"] * 5
    categorical["ward"][5] = None  # type: ignore[call-overload]
    verdict = reference.drift(numeric, categorical)
    assert np.isfinite(verdict["statistic"])
    del numeric["lactate"]
    with pytest.raises(InvalidInputError, match="lactate"):
        reference.drift(numeric, categorical)


def test_a_reference_too_small_or_malformed_is_refused() -> None:
    """Fitting needs enough rows; from_dict refuses what is not a fitted reference."""
    with pytest.raises(InvalidInputError, match="at least"):
        PcaReference.fit(*sample(10, 0.5, seed=9))
    with pytest.raises(InvalidInputError, match="not a PCA reference"):
        PcaReference.from_dict({"numeric": ["x"]})
