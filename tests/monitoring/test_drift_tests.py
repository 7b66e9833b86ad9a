"""The drift-test descriptors: each one's statistic equals its scipy reference on random
inputs, for every feature kind it declares, and drift.py returns exactly the described tests
with their default thresholds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from scipy import stats  # type: ignore[import-untyped]
from scipy.spatial import distance  # type: ignore[import-untyped]

from medops.monitoring.drift import (
    EPSILON,
    CategoricalReference,
    DriftResult,
    NumericReference,
    categorical_drift,
    numeric_drift,
)
from medops.monitoring.drift_tests import DEFAULTS, DRIFT_TESTS, LEARNED_TESTS, DriftTest

Sample = tuple[Any, Any, DriftResult]  # reference values, current values, the result


def _proportions(result: DriftResult) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    ref = np.asarray(result.parameters["reference_counts"], dtype=float)
    cur = np.asarray(result.parameters["current_counts"], dtype=float)
    k = ref.size
    return (
        (ref / ref.sum() + EPSILON) / (1 + k * EPSILON),
        (cur / cur.sum() + EPSILON) / (1 + k * EPSILON),
    )


def _finite(values: Any) -> Any:
    data = np.asarray(values, dtype=float)
    return data[np.isfinite(data)]


def _ks(ref: Any, cur: Any, result: DriftResult) -> tuple[float, float | None]:
    expected = stats.ks_2samp(_finite(ref), _finite(cur))
    return float(expected.statistic), float(expected.pvalue)


def _wasserstein(ref: Any, cur: Any, result: DriftResult) -> tuple[float, float | None]:
    ref, cur = _finite(ref), _finite(cur)
    return float(stats.wasserstein_distance(ref, cur) / ref.std()), None


def _chi2(ref: Any, cur: Any, result: DriftResult) -> tuple[float, float | None]:
    table = np.array([result.parameters["reference_counts"], result.parameters["current_counts"]])
    statistic, p_value, _, _ = stats.chi2_contingency(table, correction=False)
    return float(statistic), float(p_value)


def _psi(ref: Any, cur: Any, result: DriftResult) -> tuple[float, float | None]:
    r, c = _proportions(result)
    return float(stats.entropy(c, r) + stats.entropy(r, c)), None  # PSI = KL(c||r) + KL(r||c)


def _kl(ref: Any, cur: Any, result: DriftResult) -> tuple[float, float | None]:
    r, c = _proportions(result)
    return float(stats.entropy(c, r)), None


def _js(ref: Any, cur: Any, result: DriftResult) -> tuple[float, float | None]:
    r, c = _proportions(result)
    return float(distance.jensenshannon(r, c, base=2)), None


def _missing(ref: Any, cur: Any, result: DriftResult) -> tuple[float, float | None]:
    def missing(values: Any) -> int:
        return sum(1 for v in values if v is None or (isinstance(v, float) and np.isnan(v)))

    ref_missing, cur_missing = missing(ref), missing(cur)
    table = np.array([[ref_missing, len(ref) - ref_missing], [cur_missing, len(cur) - cur_missing]])
    _, p_value, _, _ = stats.chi2_contingency(table, correction=False)
    return cur_missing / len(cur) - ref_missing / len(ref), float(p_value)


# The scipy reference of every described test: a new descriptor fails below until it has one.
STATISTICS: dict[str, Callable[[Any, Any, DriftResult], tuple[float, float | None]]] = {
    "ks": _ks,
    "wasserstein": _wasserstein,
    "chi2": _chi2,
    "psi": _psi,
    "kl": _kl,
    "jensenshannon": _js,
    "missing_rate": _missing,
}


def _numeric(seed: int) -> tuple[list[float], list[float], list[DriftResult]]:
    rng = np.random.default_rng(seed)
    ref = rng.normal(0.0, 1.0, int(rng.integers(40, 400))).tolist()
    cur = rng.normal(rng.uniform(-0.5, 0.5), rng.uniform(0.5, 2.0), int(rng.integers(40, 400)))
    current = cur.tolist()
    for i in rng.choice(len(current), 5, replace=False):
        current[int(i)] = float("nan")
    ref[:3] = [float("nan")] * 3
    reference = NumericReference.fit(ref, bins=int(rng.integers(2, 15)))
    return ref, current, numeric_drift(reference, current, min_samples=1)


def _categorical(seed: int) -> tuple[list[Any], list[Any], list[DriftResult]]:
    rng = np.random.default_rng(seed)
    ref: list[Any] = rng.choice(["a", "b", "c", "d"], int(rng.integers(40, 400))).tolist()
    cur: list[Any] = rng.choice(["a", "b", "c", "e"], int(rng.integers(40, 400))).tolist()
    ref[:4], cur[:7] = [None] * 4, [None] * 7
    reference = CategoricalReference.fit(ref)
    return ref, cur, categorical_drift(reference, cur, min_samples=1)


@pytest.mark.parametrize("test", DRIFT_TESTS, ids=lambda t: t.name)
@pytest.mark.parametrize("seed", range(8))
def test_every_descriptor_equals_its_scipy_reference(test: DriftTest, seed: int) -> None:
    """Each described test, for each kind it declares, computes what scipy computes."""
    assert test.name in STATISTICS, f"{test.name} has no scipy reference check"
    for kind in test.kinds:
        ref, cur, results = (_numeric if kind == "numeric" else _categorical)(seed)
        result = next(r for r in results if r.test == test.name)
        statistic, p_value = STATISTICS[test.name](ref, cur, result)
        assert result.statistic == pytest.approx(statistic, rel=1e-9, abs=1e-12), kind
        if test.p_value or (p_value is not None and result.p_value is not None):
            assert result.p_value == pytest.approx(p_value, rel=1e-6, abs=1e-12), kind


@pytest.mark.parametrize("kind", ["numeric", "categorical"])
def test_drift_returns_exactly_the_described_tests_with_their_defaults(kind: str) -> None:
    """The results of a kind are its descriptors, in table order, judged by the default
    thresholds (KS and Wasserstein: only the one the sample size picks carries one)."""
    _, _, results = (_numeric if kind == "numeric" else _categorical)(0)
    described = [t for t in DRIFT_TESTS if kind in t.kinds]
    assert [r.test for r in results] == [t.name for t in described]
    assert list(DEFAULTS[kind]) == [t.name for t in described]
    for result in results:
        if result.test in {"ks", "wasserstein"} and result.threshold is None:
            continue
        assert result.threshold == DEFAULTS[kind][result.test]


def test_learned_tests_are_distances_with_a_default() -> None:
    """Only distances judged by ``statistic > threshold`` are learned (learned.py)."""
    for kind, names in LEARNED_TESTS.items():
        for name in names:
            test = next(t for t in DRIFT_TESTS if t.name == name)
            assert test.judged_by == "distance"
            assert kind in test.kinds
    assert set(LEARNED_TESTS["numeric"]) == {"wasserstein", "psi", "kl", "jensenshannon"}
    assert set(LEARNED_TESTS["categorical"]) == {"psi", "jensenshannon"}
