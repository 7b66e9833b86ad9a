"""Thresholds learned from the reference: mean + 3 sigma of each distance test across 10
reference chunks, equal to an independent scipy computation; skipped where chunks are too
small; kept in the profile; and, on scripted cases, a learned threshold catches a shift the
fixed one misses and silences an alarm the fixed one raises on a reference that varies."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import numpy as np
import pytest
from scipy import stats  # type: ignore[import-untyped]
from scipy.spatial.distance import jensenshannon  # type: ignore[import-untyped]

from medops.core.signature import FeatureSpec, ModelSignature, OutputSpec
from medops.monitoring.drift import EPSILON, CategoricalReference, NumericReference
from medops.monitoring.evaluate import WindowRows, evaluate_window
from medops.monitoring.learned import MIN_CHUNK_ROWS, learn, learn_all
from medops.monitoring.profile import ReferenceProfile
from medops.monitoring.schemas import MonitoringConfig, ThresholdsMode
from medops.monitoring.thresholds import applied

REL = 1e-9
WARDS = ["icu", "ward-a", "ward-b", "ed"]
SIGNATURE = ModelSignature(
    inputs=[
        FeatureSpec(name="lactate", type="float"),
        FeatureSpec(name="ward", type="category", categories=list(WARDS)),
    ],
    input_layout="columns",
    outputs=OutputSpec(class_labels=[0, 1]),
)


def _upper(statistics: list[float]) -> float:
    values = np.asarray(statistics)
    return float(values.mean() + 3.0 * values.std())


def _smoothed(counts: np.ndarray) -> np.ndarray:
    result: np.ndarray = (counts / counts.sum() + EPSILON) / (1.0 + counts.size * EPSILON)
    return result


def _psi(ref: np.ndarray, cur: np.ndarray) -> float:
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def test_numeric_thresholds_are_mean_plus_three_sigma_of_the_chunk_statistics() -> None:
    """Wasserstein (over the reference std), PSI, KL and Jensen-Shannon of each of 10
    consecutive chunks against the whole reference, computed here with scipy and numpy
    (decile bins of the reference, smoothed proportions), give mean + 3 x std (ddof=0)."""
    rng = np.random.default_rng(11)
    values = rng.gamma(2.0, 1.5, 1234)
    values[rng.random(values.size) < 0.05] = np.nan
    values[[7, 700]] = np.inf  # non-finite: left out as drift.py leaves them out
    learned = learn(NumericReference.fit(values), values)

    finite = np.sort(values[np.isfinite(values)])
    quantiles = np.quantile(finite, np.arange(1, 10) / 10, method="inverted_cdf")
    inner = np.unique(quantiles)
    inner = inner[inner > finite[0]]
    ref_p = _smoothed(np.bincount(np.searchsorted(inner, finite, "right"), minlength=10))
    expected: dict[str, list[float]] = {"wasserstein": [], "psi": [], "kl": [], "jensenshannon": []}
    for part in np.array_split(values, 10):
        chunk = part[np.isfinite(part)]
        counts = np.bincount(np.searchsorted(inner, chunk, "right"), minlength=inner.size + 1)
        cur_p = _smoothed(counts)
        expected["wasserstein"].append(stats.wasserstein_distance(chunk, finite) / finite.std())
        expected["psi"].append(_psi(ref_p, cur_p))
        expected["kl"].append(float(stats.entropy(cur_p, ref_p)))
        expected["jensenshannon"].append(float(jensenshannon(ref_p, cur_p, base=2)))
    assert set(learned) == set(expected)
    for test, statistics in expected.items():
        assert learned[test] == pytest.approx(_upper(statistics), rel=REL), test


def test_categorical_thresholds_are_mean_plus_three_sigma_of_the_chunk_statistics() -> None:
    """PSI and Jensen-Shannon over the reference categories, chunk against the whole
    reference (missing values left out), give mean + 3 x std; chi-square is judged by its
    p-value and is not learned."""
    rng = np.random.default_rng(12)
    values: list[Any] = rng.choice(WARDS, 900, p=[0.1, 0.4, 0.3, 0.2]).tolist()
    for i in range(0, 900, 37):
        values[i] = None
    learned = learn(CategoricalReference.fit(values), values)

    present = [v for v in values if v is not None]
    levels = sorted(set(present))
    ref_p = _smoothed(np.array([present.count(c) for c in levels]))
    psi, js = [], []
    for part in np.array_split(np.arange(len(values)), 10):
        chunk = [values[i] for i in part if values[i] is not None]
        cur_p = _smoothed(np.array([chunk.count(c) for c in levels]))
        psi.append(_psi(ref_p, cur_p))
        js.append(float(jensenshannon(ref_p, cur_p, base=2)))
    assert learned == pytest.approx({"psi": _upper(psi), "jensenshannon": _upper(js)}, rel=REL)


def test_too_few_rows_per_chunk_or_a_constant_feature_learn_nothing() -> None:
    """A chunk needs 30 values: 299 rows learn nothing, 300 do; missing values do not count;
    a constant feature (every statistic 0) or a single category learns no zero threshold."""
    rng = np.random.default_rng(13)
    enough = rng.normal(size=10 * MIN_CHUNK_ROWS)
    assert learn(NumericReference.fit(enough[:-1]), enough[:-1]) == {}
    assert set(learn(NumericReference.fit(enough), enough)) == {
        "wasserstein",
        "psi",
        "kl",
        "jensenshannon",
    }
    holes = np.concatenate([enough, np.full(100, np.nan)])  # the last chunks lack values
    assert learn(NumericReference.fit(holes), holes) == {}
    constant = np.full(600, 4.0)
    assert learn(NumericReference.fit(constant), constant) == {}
    single = ["icu"] * 600
    assert learn(CategoricalReference.fit(single), single) == {}
    assert learn_all({"x": NumericReference.fit(constant)}, {"x": constant}) == {}


def _columns(n: int, seed: int, offsets: list[float] | None = None) -> dict[str, list[Any]]:
    """``n`` rows: lactate ~ N(2, 1) (each tenth moved by ``offsets``), ward by share."""
    rng = np.random.default_rng(seed)
    lactate = rng.normal(2.0, 1.0, n)
    if offsets is not None:
        for part, offset in zip(np.array_split(np.arange(n), 10), offsets, strict=True):
            lactate[part] += offset
    ward = rng.choice(WARDS, n, p=[0.1, 0.4, 0.3, 0.2])
    return {"lactate": lactate.tolist(), "ward": ward.tolist()}


def _profile(columns: dict[str, list[Any]]) -> ReferenceProfile:
    n = len(columns["lactate"])
    return ReferenceProfile.build(SIGNATURE, columns, np.linspace(0.01, 0.99, n), None)


@cache
def _stable() -> ReferenceProfile:
    return _profile(_columns(20_000, seed=21))


def test_the_profile_keeps_learned_thresholds_through_json() -> None:
    """ReferenceProfile.build learns every feature's thresholds (as learn() does) and they
    survive to_dict -> JSON -> from_dict."""
    columns = _columns(3000, seed=22)
    profile = _profile(columns)
    assert profile.learned == {
        "lactate": learn(profile.features["lactate"], columns["lactate"]),
        "ward": learn(profile.features["ward"], columns["ward"]),
    }
    stored = json.loads(json.dumps(profile.to_dict()))
    assert ReferenceProfile.from_dict(stored).learned == profile.learned


def _judge(
    profile: ReferenceProfile, window: dict[str, list[Any]], mode: ThresholdsMode
) -> dict[str, Any]:
    """The window's document under ``mode`` thresholds, as a run computes it."""
    judged = applied(profile, MonitoringConfig(thresholds_mode=mode))
    rows = WindowRows(features=window, scores=[0.5] * len(window["lactate"]))
    return evaluate_window(
        profile,
        SIGNATURE,
        rows,
        thresholds=judged.thresholds,
        correction=judged.correction,
        min_samples=judged.min_samples,
    )


def _lactate(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["test"]: r for r in document["features"]["lactate"]}


def test_a_learned_threshold_catches_a_small_shift_the_fixed_one_misses() -> None:
    """A 20,000-row reference of a stable lab value learns a Wasserstein threshold well under
    the fixed 0.1 (0.07 here) for windows of 2,000 rows (a chunk): a 0.085 sigma rise in
    lactate stays under the fixed 0.1 (KS does not judge at this size) but is caught."""
    profile = _stable()
    window = _columns(2000, seed=23)
    window["lactate"] = [v + 0.085 for v in window["lactate"]]
    fixed, learned = _judge(profile, window, "fixed"), _judge(profile, window, "learned")
    limit = profile.learned["lactate"]["wasserstein"]
    distance = _lactate(fixed)["wasserstein"]["statistic"]
    assert limit < distance < 0.1
    assert fixed["dataset"]["drifted_features"] == []
    assert _lactate(learned)["wasserstein"]["threshold"] == limit
    assert _lactate(learned)["wasserstein"]["drifted"]
    assert "lactate" in learned["dataset"]["drifted_features"]


def test_a_learned_threshold_silences_the_variation_the_reference_already_had() -> None:
    """A reference gathered in batches whose mean moved by up to 0.4 sigma learns wide
    thresholds: a window 0.15 sigma off the reference mean, an alarm under the fixed 0.1,
    is within what the reference itself showed."""
    offsets = [0.25, -0.31, 0.05, -0.07, -0.05, -0.03, -0.24, -0.03, -0.1, 0.4]
    profile = _profile(_columns(20_000, seed=24, offsets=offsets))
    window = _columns(2000, seed=25)
    window["lactate"] = [v + float(np.mean(offsets)) + 0.15 for v in window["lactate"]]
    fixed, learned = _judge(profile, window, "fixed"), _judge(profile, window, "learned")
    assert _lactate(fixed)["wasserstein"]["drifted"]
    assert fixed["dataset"]["drifted_features"] == ["lactate"]
    assert profile.learned["lactate"]["wasserstein"] > 0.3
    assert not _lactate(learned)["wasserstein"]["drifted"]
    assert learned["dataset"]["drifted_features"] == []
