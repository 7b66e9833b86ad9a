"""Drift statistics at monitoring sizes: equal to scipy past one chunk, lean on imports."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats  # type: ignore[import-untyped]

from medops.monitoring import kolmogorov
from medops.monitoring.drift import (
    CategoricalReference,
    DriftResult,
    NumericReference,
    categorical_drift,
    numeric_drift,
)

REL = 1e-9


def _close(value: float | None, expected: float, abs_tol: float) -> bool:
    assert value is not None
    return math.isclose(value, float(expected), rel_tol=REL, abs_tol=abs_tol)


def _by_test(results: list[DriftResult]) -> dict[str, DriftResult]:
    return {result.test: result for result in results}


@settings(max_examples=8, deadline=None)
@given(
    st.integers(20_000, 70_000),
    st.integers(50_000, 150_000),
    st.integers(0, 2**32 - 1),
    st.sampled_from([0.0, 0.01, 0.2]),
    st.sampled_from([None, 2, 0]),
)
def test_ks_and_wasserstein_equal_scipy_when_the_merge_spans_several_chunks(
    n_ref: int, n_cur: int, seed: int, shift: float, ties: int | None
) -> None:
    """Past 65,536 merged values (the ECDF walk's chunk) KS and W1 still equal scipy."""
    rng = np.random.default_rng(seed)
    ref_values, cur_values = rng.normal(0.0, 1.0, n_ref), rng.normal(shift, 1.1, n_cur)
    if ties is not None:
        ref_values, cur_values = np.round(ref_values, ties), np.round(cur_values, ties)
    results = _by_test(numeric_drift(NumericReference.fit(ref_values), cur_values))
    expected = stats.ks_2samp(ref_values, cur_values)
    assert _close(results["ks"].statistic, expected.statistic, abs_tol=1e-12)
    assert _close(results["ks"].p_value, expected.pvalue, abs_tol=1e-300)
    distance = results["wasserstein"].parameters["distance"]
    assert _close(distance, stats.wasserstein_distance(ref_values, cur_values), abs_tol=1e-15)


def test_kstwo_survival_equals_scipy_past_n_100000() -> None:
    """Above n = 10^5 (the 10x benchmark's n is 400,000) every branch taken here agrees."""
    n = 400_000
    for nx2 in (0.5, 2.19, 10.0, 371.0):
        x = math.sqrt(nx2 / n)
        assert _close(kolmogorov._kstwo_sf(x, n), stats.kstwo.sf(x, n), abs_tol=1e-300)


def test_kstwo_survival_equals_scipy_where_scipy_approximates() -> None:
    """Past n = 10^6 scipy's smirnov switches to an approximation; medops follows it, so the
    p-value equals scipy at every effective n a window can have (2M and 8M here)."""
    for n in (1_000_000, 1_000_001, 2_000_000, 8_000_000):
        for nx2 in (0.5, 2.19, 2.5, 50.0, 300.0, 371.0):
            x = math.sqrt(nx2 / n)
            assert _close(kolmogorov._kstwo_sf(x, n), stats.kstwo.sf(x, n), abs_tol=1e-300), (
                n,
                nx2,
            )


text = st.lists(st.sampled_from(["a", "b", "c10", "", " ", "nan", "None", "é"]), max_size=300)


@settings(max_examples=60, deadline=None)
@given(text.filter(len), text)
def test_text_arrays_give_what_their_lists_give(ref: list[str], cur: list[str]) -> None:
    """A numpy text array (counted by numpy) profiles and drifts exactly as its list does."""
    from_list = CategoricalReference.fit(ref)
    from_array = CategoricalReference.fit(np.array(ref, dtype=np.str_))
    assert from_array == from_list
    assert list(from_array.counts) == list(from_list.counts)
    expected = [r.to_dict() for r in categorical_drift(from_list, cur)]
    as_array = categorical_drift(from_array, np.array(cur, dtype=np.str_).reshape(1, -1))
    assert [r.to_dict() for r in as_array] == expected


def test_only_none_and_float_nan_are_missing_whatever_the_input() -> None:
    """The texts "nan" and "None" are categories; None and NaN rows are missing, in any input."""
    rows: list[object] = ["nan", "None", None, math.nan, np.float32("nan"), 1, True]
    reference = CategoricalReference.fit(rows)
    assert reference.counts == {"1": 1, "None": 1, "True": 1, "nan": 1}
    assert (reference.missing, reference.count) == (3, 7)
    for present in (rows[:2], np.array(rows[:2]), np.array(rows[:2], dtype=object)):
        counted = CategoricalReference.fit(present)
        assert counted.counts == {"None": 1, "nan": 1}
        assert (counted.missing, counted.count) == (0, 2)


def test_drift_at_monitoring_sizes_does_not_import_scipy_stats() -> None:
    """Large windows (no exact KS) are judged without scipy.stats, about 50 MB of a process."""
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        from medops.monitoring.drift import (
            CategoricalReference, NumericReference, categorical_drift, numeric_drift,
        )
        rng = np.random.default_rng(7)
        reference = NumericReference.fit(rng.normal(0.0, 1.0, 20_000))
        for shift in (0.0, 0.05, 1.0):  # Pelz-Good, Smirnov series, n x^2 >= 370
            numeric_drift(reference, rng.normal(shift, 1.0, 30_000))
        labels = np.array(["a", "b", "c"])
        categories = CategoricalReference.fit(labels[rng.integers(0, 3, 20_000)])
        categorical_drift(categories, list(labels[rng.integers(0, 3, 30_000)]) + [None])
        print(sorted(name for name in sys.modules if name.startswith("scipy.stats")))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]"
