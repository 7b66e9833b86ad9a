"""Window performance, calibration and fairness: equal to scikit-learn, JSON-safe, censored."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sklearn.metrics import (  # type: ignore[import-untyped]
    accuracy_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from medops.errors import InvalidInputError
from medops.monitoring.fairness import fairness
from medops.monitoring.performance import (
    METRICS,
    alerts,
    calibration_slope_intercept,
    concept_drift_verdict,
    window_performance,
)

Array = np.ndarray[Any, Any]


def _expit(x: Array) -> Array:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def _logit(p: Array) -> Array:
    return np.asarray(np.log(p) - np.log1p(-p))


def _simulate(n: int, seed: int, prevalence_shift: float = 0.0) -> tuple[Array, Array]:
    """Calibrated scores: y ~ Bernoulli(p) with p ~ Beta(2, 5)."""
    rng = np.random.default_rng(seed)
    p = rng.beta(2.0, 5.0, size=n)
    y = rng.random(n) < np.clip(p + prevalence_shift, 0.0, 1.0)
    return y, p


def _json(result: Any) -> Any:
    return json.loads(json.dumps(result.to_dict(), allow_nan=False))


def _sklearn_points(y: Array, p: Array, threshold: float) -> dict[str, float]:
    pred = p >= threshold
    tn, fp, _, _ = confusion_matrix(y, pred, labels=[False, True]).ravel()
    found = {
        "accuracy": accuracy_score(y, pred),
        "sensitivity": recall_score(y, pred, zero_division=np.nan),
        "specificity": tn / (tn + fp) if tn + fp else math.nan,
        "precision": precision_score(y, pred, zero_division=np.nan),
        "f1": f1_score(y, pred, zero_division=np.nan),
        "brier": brier_score_loss(y.astype(int), p, labels=[0, 1]),
        "auroc": roc_auc_score(y, p) if 0 < y.sum() < y.size else math.nan,
    }
    return {name: float(value) for name, value in found.items()}


windows = st.integers(min_value=1, max_value=80).flatmap(
    lambda n: st.tuples(
        st.lists(st.booleans(), min_size=n, max_size=n),
        st.lists(
            st.one_of(
                st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 1.0]),
                st.floats(min_value=0.0, max_value=1.0),
            ),
            min_size=n,
            max_size=n,
        ),
        st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.75, 1.0]),
    )
)


@settings(deadline=None, max_examples=150)
@given(windows)
def test_point_metrics_equal_sklearn(window: tuple[list[bool], list[float], float]) -> None:
    """Every point metric equals its scikit-learn reference to 1e-9; undefined ones are None."""
    labels, scores, threshold = window
    y, p = np.array(labels, dtype=bool), np.array(scores, dtype=np.float64)
    result = window_performance(y, p, threshold, n_bootstrap=0)
    expected = _sklearn_points(y, p, threshold)
    for name in METRICS:
        value = result.metrics[name].value
        if math.isnan(expected[name]):
            assert value is None, name
        else:
            assert value is not None, name
            assert math.isclose(value, expected[name], rel_tol=1e-9, abs_tol=1e-12), name


@settings(deadline=None, max_examples=60)
@given(windows)
def test_output_is_json_safe(window: tuple[list[bool], list[float], float]) -> None:
    """``to_dict`` survives ``json.dumps(allow_nan=False)`` for any window, degenerate included."""
    labels, scores, threshold = window
    result = window_performance(np.array(labels), np.array(scores), threshold, n_bootstrap=20)
    assert _json(result)["n"] == len(labels)


@pytest.mark.parametrize("seed", range(5))
def test_interval_contains_point_value(seed: int) -> None:
    """On simulated windows each metric's bootstrap interval holds its point value, ECE's
    one-sided upper bound included (its percentile interval could lie wholly above it)."""
    y, p = _simulate(300, seed)
    result = window_performance(y, p, 0.3, n_bootstrap=300, seed=seed)
    for name, metric in [*result.metrics.items(), ("ece", result.calibration.ece)]:
        assert metric.value is not None, name
        assert metric.ci_low is not None, name
        assert metric.ci_high is not None, name
        assert metric.ci_low <= metric.value <= metric.ci_high, name
    assert result.calibration.ece.ci_method == "upper-bound"


def test_same_seed_gives_same_intervals() -> None:
    """The bootstrap is reproducible from ``seed`` and moves with it."""
    y, p = _simulate(200, 1)
    first, again = (window_performance(y, p, 0.5, seed=7) for _ in range(2))
    other = window_performance(y, p, 0.5, seed=8)
    assert first.to_dict() == again.to_dict()
    assert first.metrics["auroc"].ci_low != other.metrics["auroc"].ci_low


def test_change_is_value_minus_baseline() -> None:
    """``change`` is value - baseline where both exist, None where the baseline is missing."""
    y, p = _simulate(200, 2)
    result = window_performance(y, p, 0.3, baseline={"accuracy": 0.9, "auroc": None})
    accuracy = result.metrics["accuracy"]
    assert accuracy.value is not None
    assert accuracy.change == pytest.approx(accuracy.value - 0.9)
    assert result.metrics["auroc"].change is None
    assert result.metrics["f1"].change is None


def test_unknown_baseline_key_is_refused() -> None:
    """A baseline key that is not a metric (a typo, the registry's "ppv") raises."""
    y, p = _simulate(50, 3)
    with pytest.raises(InvalidInputError, match="ppv"):
        window_performance(y, p, 0.5, baseline={"ppv": 0.4})


def test_calibrated_scores_have_slope_one_intercept_zero() -> None:
    """Perfectly calibrated simulated data recalibrates to slope ~1, intercept ~0."""
    y, p = _simulate(20_000, 4)
    calibration = window_performance(y, p, 0.5, n_bootstrap=0).calibration
    assert calibration.slope is not None
    assert calibration.intercept is not None
    assert abs(calibration.slope - 1.0) < 0.1
    assert abs(calibration.intercept) < 0.1


def test_overconfident_scores_have_slope_below_one() -> None:
    """Scores pushed away from 0.5 (logit doubled) recalibrate to a slope under 1 (~0.5)."""
    y, p = _simulate(20_000, 5)
    overconfident = _expit(2.0 * _logit(p))
    slope, _ = calibration_slope_intercept(y, overconfident)
    assert slope is not None
    assert slope < 1.0
    assert abs(slope - 0.5) < 0.1


def test_slope_intercept_equal_sklearn_unpenalized_fit() -> None:
    """Slope and intercept equal scikit-learn's unpenalized logistic fit on logit(p).

    ``C=inf`` is scikit-learn 1.8+'s spelling of ``penalty=None`` (now deprecated).
    """
    y, p = _simulate(2_000, 6, prevalence_shift=0.1)
    slope, intercept = calibration_slope_intercept(y, p)
    model = LogisticRegression(C=np.inf, solver="newton-cg", tol=1e-12, max_iter=1000)
    model.fit(_logit(np.clip(p, 1e-6, 1 - 1e-6))[:, None], y)
    assert slope == pytest.approx(float(model.coef_[0, 0]), abs=1e-6)
    assert intercept == pytest.approx(float(model.intercept_[0]), abs=1e-6)


def test_separable_or_one_class_data_has_no_slope() -> None:
    """Without a finite maximum-likelihood fit the slope and intercept are None, not huge."""
    scores = np.linspace(0.01, 0.99, 100)
    assert calibration_slope_intercept(scores > 0.5, scores) == (None, None)
    assert calibration_slope_intercept(np.zeros(100, dtype=bool), scores) == (None, None)
    assert calibration_slope_intercept(np.arange(100) % 2 == 0, np.full(100, 0.3)) == (None, None)


def test_ece_and_reliability_curve_equal_direct_computation() -> None:
    """ECE and every reliability bin equal a loop over equal-width bins (1.0 in the last)."""
    rng = np.random.default_rng(7)
    p = np.r_[rng.random(500), [0.0, 0.1, 0.5, 1.0, 1.0]]
    y = rng.random(p.size) < p**2
    n_bins = 10
    calibration = window_performance(y, p, 0.5, n_bootstrap=0, n_bins=n_bins).calibration
    ece = 0.0
    for j, row in enumerate(calibration.bins):
        upper = (j + 1) / n_bins
        inside = (p >= j / n_bins) & ((p < upper) | ((j == n_bins - 1) & (p == 1.0)))
        assert row.count == int(inside.sum())
        assert row.mean_predicted == pytest.approx(p[inside].mean(), rel=1e-12)
        assert row.observed_rate == pytest.approx(y[inside].mean(), rel=1e-12)
        ece += inside.sum() / p.size * abs(p[inside].mean() - y[inside].mean())
    assert calibration.ece.value == pytest.approx(ece, rel=1e-9)


def test_small_window_is_insufficient_but_reported() -> None:
    """A window under ``min_samples`` rows is "insufficient-data", keeps its values, no alerts."""
    y, p = _simulate(29, 8)
    y[:2] = [True, False]
    result = window_performance(y, p, 0.3)
    assert result.status == "insufficient-data"
    assert result.reason == "n < 30"
    assert result.metrics["accuracy"].value is not None
    assert alerts(result, {"accuracy": 1.0, "ece": 0.0}) == []


def test_one_class_window_has_no_auroc() -> None:
    """A window with one class is "insufficient-data" with AUROC None, and does not raise."""
    p = np.linspace(0.0, 1.0, 60)
    result = window_performance(np.zeros(60, dtype=bool), p, 0.5)
    assert result.status == "insufficient-data"
    assert result.reason == "one class only"
    assert result.metrics["auroc"].to_dict() == {
        "value": None,
        "ci_low": None,
        "ci_high": None,
        "ci_method": None,
        "baseline": None,
        "change": None,
    }
    assert result.metrics["sensitivity"].value is None
    assert result.metrics["specificity"].value == pytest.approx(0.5)
    assert result.calibration.slope is None


def test_empty_window_does_not_raise() -> None:
    """An empty window reports n = 0 and every metric None."""
    result = window_performance(np.array([], dtype=bool), np.array([]), 0.5)
    data = _json(result)
    assert data["status"] == "insufficient-data"
    assert data["prevalence"] is None
    assert all(metric["value"] is None for metric in data["metrics"].values())


@pytest.mark.parametrize(
    ("labels", "scores"),
    [([0, 2], [0.1, 0.2]), ([0, 1], [0.1, 1.2]), ([0, 1], [0.1, math.nan]), ([0, 1], [0.1])],
)
def test_malformed_input_is_refused(labels: list[int], scores: list[float]) -> None:
    """Labels other than 0/1, scores outside [0, 1] or NaN, and unequal lengths raise."""
    with pytest.raises(InvalidInputError):
        window_performance(np.array(labels), np.array(scores), 0.5)


@pytest.mark.parametrize(
    ("input_drift", "performance_drop", "calibration_drift", "verdict"),
    [
        (False, False, False, "stable"),
        (True, False, False, "covariate-shift"),
        (False, True, False, "concept-drift"),
        (False, False, True, "concept-drift"),
        (False, True, True, "concept-drift"),
        (True, True, False, "covariate-shift-with-performance-drop"),
        (True, False, True, "covariate-shift-with-performance-drop"),
        (True, True, True, "covariate-shift-with-performance-drop"),
    ],
)
def test_concept_drift_verdict_table(
    *, input_drift: bool, performance_drop: bool, calibration_drift: bool, verdict: str
) -> None:
    """Quality falling with stable inputs is concept drift; moving inputs are covariate shift."""
    assert concept_drift_verdict(input_drift, performance_drop, calibration_drift) == verdict


def test_alerts_fire_past_their_limits_only() -> None:
    """Accuracy more than 5 points under baseline and ECE more than 0.05 over it alert."""
    y, p = _simulate(400, 9)
    result = window_performance(y, p, 0.3, n_bootstrap=0)
    accuracy, ece = result.metrics["accuracy"].value, result.calibration.ece.value
    assert accuracy is not None
    assert ece is not None
    assert alerts(result, {"accuracy": accuracy + 0.049, "ece": ece - 0.049}) == []
    found = alerts(result, {"accuracy": accuracy + 0.051, "ece": ece - 0.051})
    assert len(found) == 2
    assert found[0].startswith("accuracy dropped 5.1 points")
    assert found[1].startswith("ECE rose by 0.051")
    assert alerts(result, {}) == []


def test_fairness_flags_low_sensitivity_critical_and_censors_small_group() -> None:
    """A group whose sensitivity ratio is under 0.667 is critical; a group of 10 is censored."""
    rng = np.random.default_rng(10)
    n_a, n_b, n_c = 600, 300, 10
    y = rng.random(n_a + n_b + n_c) < 0.4
    group = np.array(["a"] * n_a + ["b"] * n_b + ["c"] * n_c)
    # Group a: positives score high (sensitivity ~0.9); group b: ~0.4.
    hit_rate = np.where(group == "b", 0.4, 0.9)
    caught = rng.random(y.size) < hit_rate
    p = np.where(y & caught, 0.8, np.where(y, 0.2, rng.uniform(0.0, 0.45, y.size)))
    result = fairness(y, p, {"site": group}, 0.5)
    (site,) = result.attributes
    assert site.reference_group == "a"
    by_name = {row.group: row for row in site.groups}
    sensitivity = by_name["b"].metrics["sensitivity"]
    assert sensitivity.ratio is not None
    assert sensitivity.ratio < 0.667
    assert sensitivity.level == "critical"
    assert site.level == "critical"
    assert by_name["a"].metrics["sensitivity"].ratio == pytest.approx(1.0)
    assert by_name["a"].metrics["sensitivity"].level == "ok"
    censored = _json(result)["attributes"][0]["groups"][2]
    assert censored == {"group": "c", "n": 10, "status": "censored", "level": None, "metrics": {}}


def test_fairness_group_points_equal_window_points() -> None:
    """A group's metric values equal ``window_performance`` on that group's rows alone."""
    y, p = _simulate(500, 11)
    sex = np.where(np.arange(500) % 3 == 0, "f", "m")
    result = fairness(y, p, {"sex": sex}, 0.3, reference_groups={"sex": "f"})
    (attribute,) = result.attributes
    assert attribute.reference_group == "f"
    for row in attribute.groups:
        mask = sex == row.group
        alone = window_performance(y[mask], p[mask], 0.3, n_bootstrap=0)
        for name in METRICS:
            assert row.metrics[name].value == alone.metrics[name].value


@pytest.mark.parametrize(
    ("ratio", "level"),
    [(1.0, "ok"), (0.8, "ok"), (0.79, "warning"), (1.3, "warning"), (0.66, "critical")],
)
def test_fairness_levels_follow_bands(ratio: float, level: str) -> None:
    """Ratios inside [0.8, 1.25] are ok, inside [0.667, 1.5] warning, else critical."""
    n = 1000
    group = np.array(["ref"] * n + ["other"] * n)
    y = np.ones(2 * n, dtype=bool)
    caught_ref, caught_other = n // 2, round(n // 2 * ratio)
    p = np.r_[np.arange(n) < caught_ref, np.arange(n) < caught_other].astype(np.float64)
    result = fairness(y, p, {"g": group}, 0.5, reference_groups={"g": "ref"})
    other = next(row for row in result.attributes[0].groups if row.group == "other")
    assert other.metrics["sensitivity"].ratio == pytest.approx(ratio, abs=1e-3)
    assert other.metrics["sensitivity"].level == level
    assert other.metrics["auroc"].ratio is None  # one class in each group


def test_fairness_with_censored_reference_judges_nothing() -> None:
    """When the reference group is censored every ratio of the attribute is None."""
    y, p = _simulate(200, 12)
    group = np.where(np.arange(200) < 5, "tiny", "big")
    result = fairness(y, p, {"g": group}, 0.3, reference_groups={"g": "tiny"})
    (attribute,) = result.attributes
    assert attribute.reference_censored
    assert attribute.level is None
    json.dumps(result.to_dict(), allow_nan=False)


def test_fairness_refuses_unknown_reference_group() -> None:
    """A reference group absent from its attribute raises instead of judging against nothing."""
    y, p = _simulate(100, 13)
    with pytest.raises(InvalidInputError, match="absent"):
        fairness(y, p, {"g": np.full(100, "x")}, 0.5, reference_groups={"g": "y"})
