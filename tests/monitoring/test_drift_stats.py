"""Drift statistics: equal to scipy on randomized inputs, stored profiles round-trip exactly."""

from __future__ import annotations

import json
import math
import re
import warnings
from collections import Counter
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

from medops.errors import InvalidInputError
from medops.monitoring import drift, kolmogorov
from medops.monitoring.drift import (
    EPSILON,
    CategoricalReference,
    DriftResult,
    NumericReference,
    adjust,
    categorical_drift,
    numeric_drift,
)
from medops.monitoring.drift_tests import DEFAULTS

REL = 1e-9
NUMERIC_TESTS = ["ks", "wasserstein", "psi", "kl", "jensenshannon", "missing_rate"]
CATEGORICAL_TESTS = ["chi2", "psi", "jensenshannon", "missing_rate"]
CATEGORIES = ["a", "b", "c", "d", "e", 1, 2.5, True]

Array = np.ndarray


def _close(value: float | None, expected: float, abs_tol: float = 1e-300) -> bool:
    assert value is not None
    return math.isclose(value, float(expected), rel_tol=REL, abs_tol=abs_tol)


def _scipy_ks(ref: Any, cur: Any) -> tuple[Any, str]:
    """scipy's ks_2samp and the method it ended with (it warns when exact mode fails)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = stats.ks_2samp(ref, cur)
    if any("Exact calculation unsuccessful" in str(w.message) for w in caught):
        return result, "asymp (exact failed)"
    return result, "exact" if max(len(ref), len(cur)) <= 10_000 else "asymp"


def _by_test(results: list[DriftResult]) -> dict[str, DriftResult]:
    return {result.test: result for result in results}


def _sample(
    rng: np.random.Generator, n: int, shift: float, scale: float, ties: int | None
) -> Array:
    values = rng.normal(shift, scale, n)
    return values if ties is None else np.round(values, ties)


@st.composite
def numeric_pairs(draw: st.DrawFn) -> tuple[Array, Array]:
    """A reference and a current sample: small (exact KS), medium, or over 10,000 (asymptotic)."""
    size = st.one_of(st.integers(1, 60), st.integers(61, 2_500), st.integers(10_001, 12_000))
    n_ref, n_cur = draw(size), draw(size)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shift = draw(st.sampled_from([0.0, 0.02, 0.3, 3.0]))
    scale = draw(st.sampled_from([1.0, 0.5, 2.0]))
    ties = draw(st.sampled_from([None, None, 1, 0]))
    return _sample(rng, n_ref, 0.0, 1.0, ties), _sample(rng, n_cur, shift, scale, ties)


small_floats = st.lists(
    st.one_of(st.floats(-1e3, 1e3, allow_nan=False), st.sampled_from([0.0, 1.0, 2.0])),
    min_size=1,
    max_size=25,
)


# --- numeric statistics against scipy -----------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(numeric_pairs())
def test_ks_equals_scipy_ks_2samp(pair: tuple[Array, Array]) -> None:
    """KS statistic and p-value equal scipy's ks_2samp (auto method) to 1e-9, ties included."""
    ref_values, cur_values = pair
    result = _by_test(numeric_drift(NumericReference.fit(ref_values), cur_values))["ks"]
    expected, method = _scipy_ks(ref_values, cur_values)
    assert _close(result.statistic, expected.statistic, abs_tol=1e-12)
    assert _close(result.p_value, expected.pvalue)
    assert result.parameters["method"] == method


@settings(max_examples=80, deadline=None)
@given(small_floats, small_floats)
@example(ref=[0.0] * 7, cur=[0.0] * 6 + [1.0])  # scipy's exact p exceeds 1: asymptotic
def test_ks_and_wasserstein_equal_scipy_on_tiny_samples(ref: list[float], cur: list[float]) -> None:
    """On tiny, tied samples KS and Wasserstein equal scipy, including where exact mode fails."""
    results = _by_test(numeric_drift(NumericReference.fit(ref), cur, min_samples=1))
    expected, method = _scipy_ks(ref, cur)
    assert _close(results["ks"].statistic, expected.statistic, abs_tol=1e-12)
    assert _close(results["ks"].p_value, expected.pvalue)
    assert results["ks"].parameters["method"] == method
    distance = results["wasserstein"].parameters["distance"]
    assert _close(distance, stats.wasserstein_distance(ref, cur), abs_tol=1e-12)


@settings(max_examples=60, deadline=None)
@given(numeric_pairs())
def test_wasserstein_equals_scipy_and_is_normalised_by_reference_std(
    pair: tuple[Array, Array],
) -> None:
    """W1 equals scipy's wasserstein_distance; the statistic divides it by std (ddof=0)."""
    ref_values, cur_values = pair
    result = _by_test(numeric_drift(NumericReference.fit(ref_values), cur_values))["wasserstein"]
    distance = result.parameters["distance"]
    assert _close(distance, stats.wasserstein_distance(ref_values, cur_values), abs_tol=1e-15)
    std = float(np.std(ref_values))
    if std > 0:
        assert _close(result.statistic, distance / std, abs_tol=1e-15)
    else:
        assert result.statistic == (math.inf if distance > 0 else 0.0)


def _smoothed(counts: Array) -> Array:
    return (counts / counts.sum() + EPSILON) / (1 + counts.size * EPSILON)


@settings(max_examples=60, deadline=None)
@given(numeric_pairs(), st.integers(1, 20))
def test_binned_statistics_equal_scipy_on_reference_bins(
    pair: tuple[Array, Array], bins: int
) -> None:
    """PSI, KL(cur||ref) and JS (base 2) equal scipy on the smoothed reference-bin shares."""
    ref_values, cur_values = pair
    results = _by_test(numeric_drift(NumericReference.fit(ref_values, bins), cur_values))
    edges = np.array(results["psi"].parameters["edges"])
    ref_counts = np.histogram(ref_values, bins=edges)[0]
    cur_counts = np.histogram(cur_values, bins=edges)[0]
    assert results["psi"].parameters["reference_counts"] == ref_counts.tolist()
    assert results["psi"].parameters["current_counts"] == cur_counts.tolist()
    ref_p, cur_p = _smoothed(ref_counts), _smoothed(cur_counts)
    psi = stats.entropy(cur_p, ref_p) + stats.entropy(ref_p, cur_p)
    assert _close(results["psi"].statistic, psi, abs_tol=1e-15)
    assert _close(results["kl"].statistic, stats.entropy(cur_p, ref_p), abs_tol=1e-15)
    js = jensenshannon(ref_p, cur_p, base=2)
    assert _close(results["jensenshannon"].statistic, js, abs_tol=1e-15)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), max_size=300),
    st.integers(1, 20),
)
def test_reference_bins_come_from_reference_and_each_holds_a_value(
    values: list[float], bins: int
) -> None:
    """Edges run -inf..+inf, strictly increasing, at most `bins` bins, none empty."""
    reference = NumericReference.fit(values, bins)
    finite = np.sort(np.array(values, dtype=np.float64)[np.isfinite(values)])
    assert np.array_equal(reference.values, finite)
    assert reference.edges[0] == -math.inf
    assert reference.edges[-1] == math.inf
    assert np.all(np.diff(reference.edges) > 0)
    assert reference.bin_counts.size <= bins
    assert reference.bin_counts.sum() == finite.size
    if finite.size:
        assert reference.bin_counts.min() >= 1
    assert reference.missing == int(np.isnan(np.array(values, dtype=np.float64)).sum())
    assert reference.count == reference.missing + reference.nonfinite + finite.size


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 50_000), st.floats(0.0, 1.0), st.sampled_from([0.5, 2.0, 8.0, 40.0]))
def test_kstwo_survival_equals_scipy(n: int, fraction: float, spread: float) -> None:
    """The faster kstwo.sf equals scipy.stats.kstwo.sf to 1e-9 across its branches."""
    x = min(1.0, fraction * spread / math.sqrt(n))
    assert _close(kolmogorov._kstwo_sf(x, n), stats.kstwo.sf(x, n))


@pytest.mark.parametrize("n", [141, 1_480, 9_999, 10_000, 40_000, 100_000])
@pytest.mark.parametrize("nx2", [0.02, 0.5, 2.19, 2.2, 10.0, 100.0, 369.0, 371.0])
def test_kstwo_survival_equals_scipy_at_branch_edges(n: int, nx2: float) -> None:
    """At scipy's branch boundaries (n x^2 = 2.2, 370; n = 140, 10^4, 10^5) values agree."""
    x = math.sqrt(nx2 / n)
    assert _close(kolmogorov._kstwo_sf(x, n), stats.kstwo.sf(x, n))


# --- categorical statistics against scipy -------------------------------------------------


categorical_values = st.lists(
    st.one_of(st.sampled_from(CATEGORIES), st.none(), st.just(math.nan)), max_size=200
)


@settings(max_examples=80, deadline=None)
@given(categorical_values.filter(len), categorical_values)
def test_categorical_statistics_equal_scipy(ref: list[object], cur: list[object]) -> None:
    """Chi-square (no correction), PSI and JS equal scipy on the union of categories."""
    results = _by_test(categorical_drift(CategoricalReference.fit(ref), cur))
    present = [str(v) for v in ref if not (v is None or (isinstance(v, float) and math.isnan(v)))]
    current = [str(v) for v in cur if not (v is None or (isinstance(v, float) and math.isnan(v)))]
    ref_counts, cur_counts = Counter(present), Counter(current)
    unseen = sorted(set(cur_counts) - set(ref_counts))
    assert results["chi2"].parameters["unseen_categories"] == unseen
    if not present or not current:
        assert all(results[t].statistic is None for t in ("chi2", "psi", "jensenshannon"))
        return
    categories = results["chi2"].parameters["categories"]
    assert sorted(categories) == sorted(set(ref_counts) | set(cur_counts))
    table = np.array([[ref_counts[c] for c in categories], [cur_counts[c] for c in categories]])
    if len(categories) == 1:
        assert (results["chi2"].statistic, results["chi2"].p_value) == (0.0, 1.0)
    else:
        expected = stats.chi2_contingency(table, correction=False)
        assert _close(results["chi2"].statistic, expected.statistic, abs_tol=1e-12)
        assert _close(results["chi2"].p_value, expected.pvalue)
    ref_p, cur_p = _smoothed(table[0]), _smoothed(table[1])
    psi = stats.entropy(cur_p, ref_p) + stats.entropy(ref_p, cur_p)
    assert _close(results["psi"].statistic, psi, abs_tol=1e-15)
    js = jensenshannon(ref_p, cur_p, base=2)
    assert _close(results["jensenshannon"].statistic, js, abs_tol=1e-15)


def test_single_category_is_chi2_zero_p_one() -> None:
    """One category on both sides is the degenerate table: statistic 0, p-value 1, no drift."""
    results = _by_test(categorical_drift(CategoricalReference.fit(["x"] * 50), ["x"] * 40))
    assert (results["chi2"].statistic, results["chi2"].p_value) == (0.0, 1.0)
    assert not any(result.drifted for result in results.values())


def test_unseen_categories_are_listed_and_counted() -> None:
    """Categories absent from the reference are named and enter the table with reference 0."""
    reference = CategoricalReference.fit(["a"] * 60 + ["b"] * 40)
    results = _by_test(categorical_drift(reference, ["a"] * 30 + ["z"] * 20 + ["y"] * 5))
    chi2 = results["chi2"]
    assert chi2.parameters["unseen_categories"] == ["y", "z"]
    assert chi2.parameters["categories"] == ["a", "b", "y", "z"]
    assert chi2.parameters["reference_counts"] == [60, 40, 0, 0]
    assert chi2.parameters["current_counts"] == [30, 0, 5, 20]
    assert chi2.drifted
    assert results["psi"].drifted
    assert results["jensenshannon"].drifted


# --- missing rate ---------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 500), st.integers(1, 500), st.data())
def test_missing_rate_z_test_equals_chi2_on_two_by_two(
    n_ref: int, n_cur: int, data: st.DataObject
) -> None:
    """The two-proportion z-test p-value equals chi-square without correction on the 2x2 table."""
    x_ref = data.draw(st.integers(0, n_ref))
    x_cur = data.draw(st.integers(0, n_cur))
    reference = NumericReference.fit([math.nan] * x_ref + [1.0] * (n_ref - x_ref))
    result = _by_test(numeric_drift(reference, [math.nan] * x_cur + [2.0] * (n_cur - x_cur)))
    missing = result["missing_rate"]
    assert _close(missing.statistic, x_cur / n_cur - x_ref / n_ref, abs_tol=1e-15)
    table = np.array([[x_ref, n_ref - x_ref], [x_cur, n_cur - x_cur]])
    if (x_ref + x_cur) in (0, n_ref + n_cur):
        assert missing.p_value == 1.0
    else:
        assert _close(missing.p_value, stats.chi2_contingency(table, correction=False).pvalue)


def test_all_missing_current_flags_missing_rate_only() -> None:
    """An all-NaN current sample drifts on missing rate; distribution tests lack data."""
    reference = NumericReference.fit(np.random.default_rng(1).normal(size=500))
    results = _by_test(numeric_drift(reference, np.full(100, np.nan)))
    assert results["missing_rate"].drifted
    assert results["missing_rate"].status == "ok"
    assert results["missing_rate"].statistic == 1.0
    for test in NUMERIC_TESTS[:-1]:
        assert results[test].status == "insufficient-data"
        assert results[test].statistic is None
        assert not results[test].drifted


# --- edge cases ------------------------------------------------------------------------------


def test_nan_and_inf_in_current_are_counted_and_left_out() -> None:
    """NaN counts as missing, +-inf as non-finite; statistics use the finite values only."""
    rng = np.random.default_rng(5)
    ref_values, finite = rng.normal(size=300), rng.normal(0.2, 1, 200)
    current = np.concatenate((finite, [np.nan, np.inf, -np.inf, np.nan, np.inf]))
    results = _by_test(numeric_drift(NumericReference.fit(ref_values), current))
    ks = results["ks"]
    assert ks.parameters["current_missing"] == 2
    assert ks.parameters["current_nonfinite"] == 3
    assert ks.parameters["current_n"] == 200
    expected = stats.ks_2samp(ref_values, finite)
    assert _close(ks.statistic, expected.statistic)
    assert _close(ks.p_value, expected.pvalue)
    assert results["missing_rate"].parameters["current_rows"] == 205


def test_empty_current_reports_insufficient_data_without_statistics() -> None:
    """An empty current sample raises nothing: every result is insufficient-data, undecided."""
    reference = NumericReference.fit(np.arange(100.0))
    for results in (
        numeric_drift(reference, np.array([])),
        categorical_drift(CategoricalReference.fit(["a", "b"] * 20), []),
    ):
        for result in results:
            assert result.status == "insufficient-data"
            assert not result.drifted
            assert result.statistic is None
            assert result.p_value is None
            json.dumps(result.to_dict(), allow_nan=False)


def test_small_current_reports_statistics_but_no_verdict() -> None:
    """Below min_samples the statistics are still computed but nothing is flagged."""
    reference = NumericReference.fit(np.random.default_rng(2).normal(size=1000))
    results = numeric_drift(reference, np.full(10, 50.0))
    distribution = [r for r in results if r.test != "missing_rate"]
    assert all(r.status == "insufficient-data" and not r.drifted for r in distribution)
    assert all(r.statistic is not None for r in distribution)
    flagged = numeric_drift(reference, np.full(10, 50.0), min_samples=5)
    assert _by_test(flagged)["ks"].drifted


def test_constant_reference_normalises_wasserstein_to_inf_and_serialises() -> None:
    """A zero-variance reference gives an infinite normalised W1, written as "inf" in JSON."""
    reference = NumericReference.fit(np.ones(100))
    assert reference.edges.tolist() == [-math.inf, math.inf]
    results = _by_test(numeric_drift(reference, np.full(2000, 2.0), ks_max_n=0))
    assert results["wasserstein"].statistic == math.inf
    assert results["wasserstein"].drifted
    assert results["psi"].statistic == 0.0
    encoded = json.dumps(results["wasserstein"].to_dict(), allow_nan=False)
    assert json.loads(encoded)["statistic"] == "inf"


# --- serialisation ------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(st.floats(-1e150, 1e150), st.sampled_from([math.nan, math.inf, -math.inf])),
        max_size=200,
    ),
    st.integers(1, 15),
)
def test_numeric_reference_round_trips_through_json(values: list[float], bins: int) -> None:
    """to_dict -> JSON -> from_dict rebuilds the profile exactly, non-finite values included."""
    reference = NumericReference.fit(values, bins)
    stored = json.dumps(reference.to_dict(), allow_nan=False)
    rebuilt = NumericReference.from_dict(json.loads(stored))
    assert rebuilt.to_dict() == reference.to_dict()
    assert np.array_equal(rebuilt.values, reference.values)
    assert np.array_equal(rebuilt.edges, reference.edges)
    assert np.array_equal(rebuilt.bin_counts, reference.bin_counts)
    assert math.isclose(rebuilt.missing_rate, reference.missing_rate)
    current = np.linspace(-3, 3, 40)
    before = [result.to_dict() for result in numeric_drift(reference, current)]
    assert [result.to_dict() for result in numeric_drift(rebuilt, current)] == before


@settings(max_examples=40, deadline=None)
@given(categorical_values)
def test_categorical_reference_round_trips_through_json(values: list[object]) -> None:
    """to_dict -> JSON -> from_dict rebuilds a categorical profile exactly."""
    reference = CategoricalReference.fit(values)
    rebuilt = CategoricalReference.from_dict(json.loads(json.dumps(reference.to_dict())))
    assert rebuilt == reference


def test_malformed_profiles_are_refused() -> None:
    """from_dict refuses another kind or missing fields with InvalidInputError."""
    numeric = NumericReference.fit([1.0, 2.0]).to_dict()
    with pytest.raises(InvalidInputError):
        CategoricalReference.from_dict(numeric)
    with pytest.raises(InvalidInputError):
        NumericReference.from_dict({"kind": "numeric"})
    with pytest.raises(InvalidInputError):
        NumericReference.fit([1.0], bins=0)


def test_reference_arrays_are_read_only() -> None:
    """A stored profile cannot be changed in place."""
    reference = NumericReference.fit([3.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="read-only"):
        reference.values[0] = 9.0


# --- verdicts -------------------------------------------------------------------------------


def test_shifted_sample_is_flagged() -> None:
    """A one-std shift is flagged by Wasserstein, PSI and JS; a small shifted window by KS."""
    reference = NumericReference.fit(np.random.default_rng(1).normal(size=5000))
    shifted = _by_test(numeric_drift(reference, np.random.default_rng(2).normal(1.0, 1, 5000)))
    assert [shifted[t].drifted for t in ("wasserstein", "psi", "jensenshannon")] == [True] * 3
    window = _by_test(numeric_drift(reference, np.random.default_rng(3).normal(0.5, 1, 200)))
    assert window["ks"].threshold == 0.05
    assert window["ks"].drifted


def test_unshifted_control_is_not_flagged() -> None:
    """Same distribution, other seed, n=5000: nothing is flagged under DEFAULTS.

    n_eff = 2,500 > 1,000, so Wasserstein judges and KS is reported with no threshold; the
    verdicts do not depend on the seed (W1/std ~ 0.02, PSI ~ 0.002, JS ~ 0.02 here).
    """
    reference = NumericReference.fit(np.random.default_rng(1).normal(size=5000))
    control = _by_test(numeric_drift(reference, np.random.default_rng(2).normal(size=5000)))
    assert not any(result.drifted for result in control.values())
    assert control["ks"].threshold is None
    assert control["wasserstein"].threshold == 0.1
    assert control["wasserstein"].statistic is not None
    assert control["wasserstein"].statistic < 0.05
    assert control["psi"].statistic is not None
    assert control["psi"].statistic < 0.02
    assert control["jensenshannon"].statistic is not None
    assert control["jensenshannon"].statistic < 0.05


def test_categorical_shift_is_flagged_and_control_is_not() -> None:
    """Swapped category shares are flagged by chi2, PSI, JS; a same-share sample is not.

    Seed 2 is a chi-square control whose p-value is above 0.05 (it would be below 0.05 for
    about one seed in twenty).
    """
    shares = [0.5, 0.3, 0.2]
    reference = CategoricalReference.fit(
        np.random.default_rng(1).choice(list("abc"), 5000, p=shares)
    )
    shifted = np.random.default_rng(2).choice(list("abc"), 5000, p=shares[::-1])
    control = np.random.default_rng(2).choice(list("abc"), 5000, p=shares)
    assert all(r.drifted for r in categorical_drift(reference, shifted) if r.test != "missing_rate")
    assert not any(r.drifted for r in categorical_drift(reference, control))


def test_exactly_one_of_ks_and_wasserstein_judges() -> None:
    """n_eff <= ks_max_n gives KS the threshold, otherwise Wasserstein; both are reported."""
    reference = NumericReference.fit(np.random.default_rng(1).normal(size=2000))
    current = np.random.default_rng(2).normal(size=2000)
    for ks_max_n, judge in ((math.inf, "ks"), (0.0, "wasserstein"), (1000.0, "ks")):
        results = _by_test(numeric_drift(reference, current, ks_max_n=ks_max_n))
        judged = [t for t in ("ks", "wasserstein") if results[t].threshold is not None]
        assert judged == [judge]
        assert results["ks"].parameters["judged_by"] == judge


def test_thresholds_override_defaults_and_unknown_tests_are_refused() -> None:
    """Given thresholds replace defaults (None stops judging); unknown tests are refused.
    (Samples large enough that the 0.2-sd shift is above the binned tests' noise floor.)"""
    reference = NumericReference.fit(np.random.default_rng(1).normal(size=5000))
    current = np.random.default_rng(2).normal(0.2, 1, 5000)
    assert not _by_test(numeric_drift(reference, current))["psi"].drifted  # default 0.2
    results = _by_test(numeric_drift(reference, current, {"psi": 0.0, "kl": 0.0, "ks": None}))
    assert results["psi"].drifted
    assert results["kl"].drifted
    assert results["kl"].threshold == 0.0
    assert results["ks"].threshold is None
    assert not results["ks"].drifted
    with pytest.raises(InvalidInputError):
        numeric_drift(reference, current, {"chi2": 0.05})
    assert results["psi"].parameters["effective_threshold"] > 0.0
    with pytest.raises(InvalidInputError):
        categorical_drift(CategoricalReference.fit(["a"]), ["a"], {"psi": -1.0})


def test_small_samples_of_one_distribution_raise_no_binned_alarm() -> None:
    """Two small samples of one distribution give PSI and JS near or above their default
    thresholds by chance alone; the noise floor keeps them from judging drift, while a real
    shift of the same small size is still flagged."""
    rng = np.random.default_rng(7)
    false_alarms = 0
    for _ in range(50):
        reference = NumericReference.fit(rng.normal(size=110))
        results = _by_test(numeric_drift(reference, rng.normal(size=100)))
        false_alarms += results["psi"].drifted or results["jensenshannon"].drifted
        assert results["jensenshannon"].parameters["noise_floor"] > 0.1
    assert false_alarms <= 1
    reference = NumericReference.fit(rng.normal(size=110))
    shifted = _by_test(numeric_drift(reference, rng.normal(2.0, 1, 100)))
    assert shifted["psi"].drifted
    assert shifted["jensenshannon"].drifted


def test_results_name_every_test_in_a_fixed_order() -> None:
    """Numeric and categorical checks always return the same tests, in the same order."""
    reference = NumericReference.fit(np.arange(50.0))
    assert [r.test for r in numeric_drift(reference, np.arange(40.0))] == NUMERIC_TESTS
    categorical = categorical_drift(CategoricalReference.fit(["a", None]), ["b"])
    assert [r.test for r in categorical] == CATEGORICAL_TESTS


def test_docstring_table_matches_defaults() -> None:
    """The defaults table in the module docstring states exactly DEFAULTS."""
    assert drift.__doc__ is not None
    rows = re.findall(r"^\| (numeric|categorical) +\| (\w+) +\| ([\w.]+) +\|", drift.__doc__, re.M)
    table: dict[str, dict[str, float | None]] = {}
    for kind, test, value in rows:
        table.setdefault(kind, {})[test] = None if value == "None" else float(value)
    assert table == {kind: dict(tests) for kind, tests in DEFAULTS.items()}


# --- multiple testing -----------------------------------------------------------------------


p_value_lists = st.lists(st.floats(0.0, 1.0), min_size=1, max_size=60)


@settings(max_examples=80, deadline=None)
@given(p_value_lists)
def test_benjamini_hochberg_equals_scipy(p_values: list[float]) -> None:
    """BH-adjusted p-values equal scipy.stats.false_discovery_control(method="bh")."""
    expected = stats.false_discovery_control(p_values, method="bh")
    assert np.allclose(adjust(p_values, "benjamini-hochberg"), expected, rtol=REL, atol=0)


@settings(max_examples=80, deadline=None)
@given(p_value_lists)
def test_holm_and_bonferroni_follow_their_definitions(p_values: list[float]) -> None:
    """Holm is the step-down running max of (m - i + 1) p_(i); Bonferroni is min(1, m p)."""
    m = len(p_values)
    ranked = sorted(range(m), key=lambda i: p_values[i])
    holm = [0.0] * m
    running = 0.0
    for rank, index in enumerate(ranked):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        holm[index] = running
    assert np.allclose(adjust(p_values, "holm"), holm, rtol=REL, atol=0)
    bonferroni = [min(1.0, m * p) for p in p_values]
    assert np.allclose(adjust(p_values, "bonferroni"), bonferroni, rtol=REL, atol=0)


def test_adjust_refuses_values_outside_zero_one_and_unknown_methods() -> None:
    """adjust accepts only p-values in [0, 1] and the three named methods."""
    assert adjust([]).size == 0
    with pytest.raises(InvalidInputError):
        adjust([0.5, 1.5])
    with pytest.raises(InvalidInputError):
        adjust([0.5, math.nan])
    with pytest.raises(InvalidInputError):
        adjust([0.5], "hochberg")  # type: ignore[arg-type]
