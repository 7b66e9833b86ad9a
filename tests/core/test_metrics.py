"""Vectorized metrics and bootstrap: equal to scikit-learn, undefined as None, reproducible."""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm  # type: ignore[import-untyped]

from medops.core import metrics
from medops.core.metrics import (
    METRIC_NAMES,
    ScoreLevels,
    bootstrap_distribution,
    bootstrap_indices,
    curve_points,
    percentile_interval,
    point_metrics,
    resample_metrics,
    thin,
)

TOLERANCE = 1e-9
TIED_SCORES = (0.0, 0.1, 0.25, 0.3, 0.5, 0.7, 0.75, 0.9, 1.0)
THRESHOLDS = (0.05, 0.1, 0.25, 0.3, 0.5, 0.7, 0.75, 0.95)

Array = np.ndarray


def _nan_to_none(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _quiet(function: Callable[[], float]) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(function())


def sklearn_metrics(y: Array, s: Array, threshold: float) -> dict[str, float | None]:
    """The reference: scikit-learn, with NaN (then None) wherever a metric is undefined."""
    pred = (s >= threshold).astype(int)
    both = 0 < y.sum() < y.size
    nan = np.nan
    found = {
        "auroc": _quiet(lambda: skm.roc_auc_score(y, s)) if both else nan,
        "auprc": _quiet(lambda: skm.average_precision_score(y, s)) if y.any() else nan,
        "accuracy": skm.accuracy_score(y, pred),
        "sensitivity": skm.recall_score(y, pred, zero_division=nan),
        "specificity": skm.recall_score(y, pred, pos_label=0, zero_division=nan),
        "ppv": skm.precision_score(y, pred, zero_division=nan),
        "npv": skm.precision_score(y, pred, pos_label=0, zero_division=nan),
        "f1": skm.f1_score(y, pred, zero_division=nan),
        "brier": skm.brier_score_loss(y, s),
        "ece": reference_ece(y, s, 10),
    }
    return {name: _nan_to_none(float(value)) for name, value in found.items()}


def reference_ece(y: Array, s: Array, n_bins: int) -> float:
    """ECE by a plain loop over bins ``[j/n_bins, (j+1)/n_bins)``, 1.0 in the last bin."""
    total = 0.0
    for j in range(n_bins):
        lower, upper = j / n_bins, (j + 1) / n_bins
        inside = [
            i for i in range(y.size) if lower <= s[i] < upper or (j == n_bins - 1 and s[i] == upper)
        ]
        if inside:
            mean_predicted = sum(float(s[i]) for i in inside) / len(inside)
            fraction_positive = sum(float(y[i]) for i in inside) / len(inside)
            total += len(inside) / y.size * abs(mean_predicted - fraction_positive)
    return total


def assert_close(found: dict[str, float | None], expected: dict[str, float | None]) -> None:
    """Same None pattern and values within the tolerance."""
    for name in METRIC_NAMES:
        if expected[name] is None:
            assert found[name] is None, name
        else:
            assert found[name] == pytest.approx(expected[name], abs=TOLERANCE), name


def levels_of(y: Array, s: Array, n_bins: int = 10) -> ScoreLevels:
    """ScoreLevels of integer labels."""
    return ScoreLevels.build(y == 1, s.astype(np.float64), n_bins)


@st.composite
def datasets(draw: st.DrawFn) -> tuple[Array, Array, float]:
    """Small data sets: tied or continuous scores, balanced or very imbalanced labels."""
    n = draw(st.integers(min_value=1, max_value=40))
    positive_rate = draw(st.sampled_from([0.0, 0.05, 0.3, 0.5, 0.9, 1.0]))
    y = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=int)
    if draw(st.booleans()):  # imbalanced: keep only a few labels from the draw
        y = np.array([int(i % max(1, int(1 / max(positive_rate, 0.025))) == 0) for i in range(n)])
        if positive_rate in {0.0, 1.0}:
            y = np.full(n, int(positive_rate))
    score = st.sampled_from(TIED_SCORES) if draw(st.booleans()) else st.floats(0.0, 1.0)
    s = np.array(draw(st.lists(score, min_size=n, max_size=n)), dtype=np.float64)
    threshold = draw(st.sampled_from(THRESHOLDS) | st.floats(0.01, 0.99))
    return y, s, threshold


@settings(max_examples=100, deadline=None)
@given(datasets())
def test_point_metrics_equal_sklearn(data: tuple[Array, Array, float]) -> None:
    """Every metric equals scikit-learn to 1e-9, and is None exactly where it is undefined."""
    y, s, threshold = data
    assert_close(point_metrics(levels_of(y, s), threshold), sklearn_metrics(y, s, threshold))


@settings(max_examples=40, deadline=None)
@given(datasets(), st.integers(min_value=0, max_value=2**32 - 1))
def test_each_resample_equals_sklearn_on_its_indices(
    data: tuple[Array, Array, float], seed: int
) -> None:
    """Row b of the vectorized resample metrics equals scikit-learn on y[idx[b]], s[idx[b]]."""
    y, s, threshold = data
    idx = np.random.default_rng(seed).integers(0, y.size, size=(3, y.size))
    found = resample_metrics(levels_of(y, s), idx, threshold)
    for b in range(idx.shape[0]):
        row = {name: _nan_to_none(float(found[name][b])) for name in METRIC_NAMES}
        assert_close(row, sklearn_metrics(y[idx[b]], s[idx[b]], threshold))


def test_bootstrap_distribution_uses_the_generators_indices() -> None:
    """The bootstrap distribution is the metrics on the indices the seeded generator draws."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 60)
    s = np.round(rng.random(60), 1)
    spread = bootstrap_distribution(
        levels_of(y, s), threshold=0.5, n_bootstrap=7, rng=np.random.default_rng(11)
    )
    idx = next(bootstrap_indices(60, 7, np.random.default_rng(11)))
    for b in range(7):
        row = {name: _nan_to_none(float(spread[name][b])) for name in METRIC_NAMES}
        assert_close(row, sklearn_metrics(y[idx[b]], s[idx[b]], 0.5))


def test_bootstrap_is_chunked_and_complete(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small chunks still give exactly n_bootstrap resamples, each equal to its indices' metrics."""
    monkeypatch.setattr(metrics, "MAX_CELLS_PER_CHUNK", 100)
    chunks = list(bootstrap_indices(30, 10, np.random.default_rng(0)))
    assert [c.shape for c in chunks] == [(3, 30), (3, 30), (3, 30), (1, 30)]
    y = np.arange(30) % 3 == 0
    s = np.linspace(0, 1, 30)
    levels = ScoreLevels.build(y, s, 10)
    spread = bootstrap_distribution(
        levels, threshold=0.5, n_bootstrap=10, rng=np.random.default_rng(0)
    )
    expected = resample_metrics(levels, np.concatenate(chunks), 0.5)
    for name in METRIC_NAMES:
        np.testing.assert_array_equal(spread[name], expected[name])


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    """The same seed gives bit-identical resample metrics; another seed gives others."""
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 200)
    s = rng.random(200)
    levels = levels_of(y, s)

    def run(seed: int) -> dict[str, Array]:
        return bootstrap_distribution(
            levels, threshold=0.5, n_bootstrap=50, rng=np.random.default_rng(seed)
        )

    first, again, other = run(1), run(1), run(2)
    for name in METRIC_NAMES:
        np.testing.assert_array_equal(first[name], again[name])
    assert not np.array_equal(first["auroc"], other["auroc"])


def test_percentile_interval_contains_the_estimate_on_reasonable_data() -> None:
    """With n=600, the 95% percentile interval of each metric except ECE contains its value."""
    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, 600)
    s = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
    levels = levels_of(y, s)
    points = point_metrics(levels, 0.5)
    spread = bootstrap_distribution(
        levels, threshold=0.5, n_bootstrap=400, rng=np.random.default_rng(0)
    )
    for name in METRIC_NAMES:
        if name == "ece":  # ECE's bootstrap is biased upwards; its interval may miss it
            continue
        low, high = percentile_interval(spread[name], 0.95)
        assert low is not None
        assert high is not None
        point = points[name]
        assert point is not None
        assert low <= point <= high, name


def test_percentile_interval_drops_undefined_and_needs_half_defined() -> None:
    """NaN resamples are dropped; under half defined gives no interval."""
    values = np.array([np.nan, 1.0, 2.0, 3.0, 4.0])
    assert percentile_interval(values, 0.5) == (1.75, 3.25)
    assert percentile_interval(np.array([np.nan, np.nan, 1.0]), 0.95) == (None, None)
    assert percentile_interval(np.array([np.nan, 1.0]), 0.95) == (1.0, 1.0)
    assert percentile_interval(np.empty(0), 0.95) == (None, None)


@settings(max_examples=60, deadline=None)
@given(datasets(), st.integers(min_value=1, max_value=20))
def test_ece_equals_a_loop_reference(data: tuple[Array, Array, float], n_bins: int) -> None:
    """ECE equals the plain-loop definition for any bin count, scores 0 and 1 included."""
    y, s, _ = data
    found = point_metrics(levels_of(y, s, n_bins), 0.5)["ece"]
    assert found == pytest.approx(reference_ece(y, s, n_bins), abs=TOLERANCE)


@settings(max_examples=60, deadline=None)
@given(datasets())
def test_curves_equal_sklearn(data: tuple[Array, Array, float]) -> None:
    """ROC and PR points equal roc_curve and (reversed) precision_recall_curve."""
    y, s, _ = data
    if not 0 < y.sum() < y.size:
        return
    fpr, tpr, recall, precision = curve_points(levels_of(y, s))
    ref_fpr, ref_tpr, _ = skm.roc_curve(y, s, drop_intermediate=False)
    ref_precision, ref_recall, _ = skm.precision_recall_curve(y, s)
    np.testing.assert_allclose(fpr, ref_fpr, atol=TOLERANCE)
    np.testing.assert_allclose(tpr, ref_tpr, atol=TOLERANCE)
    np.testing.assert_allclose(recall, ref_recall[::-1], atol=TOLERANCE)
    np.testing.assert_allclose(precision, ref_precision[::-1], atol=TOLERANCE)


def test_thin_keeps_endpoints_and_bounds_points() -> None:
    """Thinning gives at most max_points, first and last kept, short curves untouched."""
    x = np.linspace(0, 1, 1001)
    xs, ys = thin(x, x**2, 200)
    assert len(xs) == len(ys) <= 200
    assert (xs[0], xs[-1], ys[-1]) == (0.0, 1.0, 1.0)
    assert thin(x[:5], x[:5], 200) == ([float(v) for v in x[:5]], [float(v) for v in x[:5]])


def test_single_class_resample_gives_nan_not_zero() -> None:
    """A resample holding only negatives has NaN AUROC, AUPRC, sensitivity (no 0 stand-in)."""
    y = np.array([0, 1])
    s = np.array([0.2, 0.8])
    found = resample_metrics(levels_of(y, s), np.array([[0, 0]]), 0.5)
    for name in ("auroc", "auprc", "sensitivity", "ppv", "f1"):
        assert math.isnan(found[name][0]), name
    assert found["specificity"][0] == 1.0
    assert found["accuracy"][0] == 1.0


def _scipy_bca(
    y: Array, s: Array, name: str, spread: Array, metric: Callable[[Array, Array], float]
) -> tuple[float, float]:
    """The reference: scipy's own BCa percentile levels (its private ``_bca_interval``, the
    function ``scipy.stats.bootstrap`` uses, whose ``alpha`` is one tail) over the same
    bootstrap values, with the jackknife done row by row with scikit-learn."""
    from scipy._lib._array_api import array_namespace  # type: ignore[import-untyped]
    from scipy.stats import _resampling  # type: ignore[import-untyped]

    def statistic(idx: Array, axis: int = -1) -> Array:
        flat = idx.reshape(-1, idx.shape[-1])
        values = [_quiet(functools.partial(lambda r: metric(y[r], s[r]), row)) for row in flat]
        return np.array(values).reshape(idx.shape[:-1])

    defined = spread[~np.isnan(spread)]
    data = (np.arange(y.size),)
    alpha_1, alpha_2, _ = _resampling._bca_interval(
        data, statistic, -1, 0.025, defined, None, array_namespace(defined)
    )
    low, high = np.percentile(defined, [100 * float(alpha_1), 100 * float(alpha_2)])
    return float(low), float(high)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bca_intervals_equal_scipys_reference(seed: int) -> None:
    """AUROC, sensitivity, accuracy and Brier BCa intervals (jackknife on counts, tied
    scores) equal scipy's BCa over the same resamples with a row-by-row jackknife."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(60, 140))
    y = rng.integers(0, 2, n)
    s = np.round(np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1), 2)
    levels = levels_of(y, s)
    points = point_metrics(levels, 0.5)
    spread = bootstrap_distribution(
        levels, threshold=0.5, n_bootstrap=500, rng=np.random.default_rng(seed)
    )
    found = metrics.bca_intervals(levels, spread, points, threshold=0.5, confidence=0.95)
    references: dict[str, Callable[[Array, Array], float]] = {
        "auroc": skm.roc_auc_score,
        "sensitivity": lambda t, p: skm.recall_score(t, p >= 0.5),
        "accuracy": lambda t, p: skm.accuracy_score(t, p >= 0.5),
        "brier": skm.brier_score_loss,
    }
    for name, reference in references.items():
        low, high = _scipy_bca(y, s, name, spread[name], reference)
        assert found[name].method == "bca", name
        assert found[name].low == pytest.approx(low, abs=TOLERANCE), name
        assert found[name].high == pytest.approx(high, abs=TOLERANCE), name


def test_bca_falls_back_and_widens_where_the_resamples_lie_on_one_side() -> None:
    """Every resample above the estimate: the percentile interval widened to the estimate;
    ECE's interval is a one-sided upper bound from 0."""
    above = np.array([0.5, 0.6, 0.7, 0.8])
    widened = metrics.bca_interval(above, 0.4, 0.0, 0.95)
    assert (widened.low, widened.method) == (0.4, "percentile-widened")
    bound = metrics.upper_bound(np.linspace(0.0, 1.0, 101), 0.95)
    assert bound.low == 0.0
    assert bound.high == pytest.approx(0.95)
    assert bound.method == "upper-bound"
    none = metrics.bca_interval(np.array([np.nan, np.nan, 0.3]), 0.3, 0.0, 0.95)
    assert (none.low, none.high, none.method) == (None, None, None)
