"""CBPE: label-free performance estimation agrees with NannyML, tracks realized performance,
and shows in the window report until outcomes arrive, then reconciles with them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medops.errors import InvalidInputError
from medops.monitoring.cbpe import (
    ESTIMATED,
    CbpeReference,
    estimate_metrics,
    realized_metrics,
    reconcile,
)
from tests.helpers.cbpe_cases import CASES, CHUNK, DEFAULT_CHUNKING, THRESHOLD, case

RECORDED = json.loads((Path(__file__).parent / "data" / "cbpe_nannyml.json").read_text())
TOLERANCE = 1e-6  # stated in medops.monitoring.cbpe and benchmarks/cbpe_agreement.py


@pytest.mark.parametrize("name", CASES)
def test_agrees_with_nannyml_on_every_chunk_metric_and_field(name: str) -> None:
    """Estimates, sampling errors, bands and alert limits equal NannyML 0.13.1's recorded
    answers on the same data within 1e-6, and calibration applies exactly when NannyML's."""
    assert RECORDED["nannyml"] == "0.13.1"
    assert RECORDED["tolerance"] == TOLERANCE
    theirs = RECORDED["cases"][name]
    ref_s, ref_y, ana_s, _ = case(name)
    default = name in DEFAULT_CHUNKING  # NannyML's default chunker: a tenth, remainder kept
    reference = CbpeReference.fit(ref_s, ref_y, THRESHOLD, chunk_size=None if default else CHUNK)
    assert reference.calibrated is theirs["calibrated"]
    assert len(theirs["chunks"]) == (11 if default else len(ana_s) // CHUNK)
    compared = 0
    for chunk in theirs["chunks"]:
        ours = reference.estimate(ana_s[chunk["start"] : chunk["end"]])
        assert set(ours["metrics"]) == set(chunk["metrics"]) == set(ESTIMATED)
        for metric, fields in chunk["metrics"].items():
            for field, expected in fields.items():
                got = ours["metrics"][metric][field]
                assert expected is not None, (metric, field)
                if got is None:  # undefined here (a zero denominator); NannyML says 0
                    assert ours["metrics"][metric]["value"] is None
                    assert chunk["metrics"][metric]["value"] == 0.0
                    assert chunk["end"] - chunk["start"] < CHUNK  # only the 4-row remainder
                    compared += 1
                    continue
                assert got == pytest.approx(expected, abs=TOLERANCE), (chunk["start"], metric)
                compared += 1
    assert compared == len(theirs["chunks"]) * len(ESTIMATED) * 6


def test_the_overconfident_case_needs_calibration_and_it_moves_the_estimate() -> None:
    """Overconfident scores are recalibrated; without it the estimate would be far off the
    realized accuracy, with it the realized value lies in the band."""
    ref_s, ref_y, ana_s, ana_y = case("overconfident-shift")
    reference = CbpeReference.fit(ref_s, ref_y, THRESHOLD)
    assert reference.calibrated
    window = ana_s[:CHUNK]
    predicted = window >= THRESHOLD
    raw = estimate_metrics(window, window, predicted)["accuracy"]
    estimated = reference.estimate(window)["metrics"]["accuracy"]
    realized = realized_metrics(ana_y[:CHUNK], window, predicted)["accuracy"]
    assert raw is not None
    assert realized is not None
    assert abs(raw - realized) > abs(estimated["value"] - realized)
    assert estimated["lower"] <= realized <= estimated["upper"]


def test_estimates_track_realized_performance_on_calibrated_data() -> None:
    """Outcomes drawn from the calibrated scores: across 40 windows the realized accuracy,
    F1 and AUROC fall inside the estimate's band in the large majority (bands are 3 sampling
    errors wide), and the mean error is near zero."""
    rng = np.random.default_rng(5)
    ref = rng.beta(2, 3, 20_000)
    reference = CbpeReference.fit(ref, rng.random(ref.size) < ref, 0.5)
    inside = dict.fromkeys(("accuracy", "f1", "auroc"), 0)
    errors = []
    for _ in range(40):
        scores = rng.beta(2.5, 3, 1000)  # a mildly shifted score distribution
        truth = rng.random(scores.size) < scores
        estimate = reference.estimate(scores)["metrics"]
        realized = realized_metrics(truth, scores, scores >= 0.5)
        errors.append(estimate["accuracy"]["value"] - realized["accuracy"])
        for metric in inside:
            value = realized[metric]
            assert value is not None
            inside[metric] += estimate[metric]["lower"] <= value <= estimate[metric]["upper"]
    assert all(count >= 36 for count in inside.values()), inside
    assert abs(float(np.mean(errors))) < 0.01


def test_expected_confusion_matrix_by_hand() -> None:
    """Four rows: the expected counts and metrics follow the module docstring's formulas."""
    calibrated = np.array([0.9, 0.6, 0.3, 0.2])
    predicted = np.array([True, True, False, False])
    got = estimate_metrics(calibrated, calibrated, predicted)
    tp, fp, fn, tn = 1.5, 0.5, 0.5, 1.5
    assert got["accuracy"] == pytest.approx((tp + tn) / 4)
    assert got["sensitivity"] == pytest.approx(tp / (tp + fn))
    assert got["specificity"] == pytest.approx(tn / (tn + fp))
    assert got["precision"] == pytest.approx(tp / (tp + fp))
    assert got["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    # expected ROC: ranks 0.9, 0.6, 0.3, 0.2; positives 0.9, 0.6, 0.3, 0.2 (sum 2.0)
    tps = np.array([0, 0.9, 1.5, 1.8, 2.0]) / 2.0
    fps = np.array([0, 0.1, 0.5, 1.2, 2.0]) / 2.0
    assert got["auroc"] == pytest.approx(float(np.trapezoid(tps, fps)))


def test_round_trip_keeps_every_estimate() -> None:
    """A stored and reloaded reference estimates exactly as the fitted one."""
    ref_s, ref_y, ana_s, _ = case("tied-scores")
    fitted = CbpeReference.fit(ref_s, ref_y, THRESHOLD)
    loaded = CbpeReference.from_dict(json.loads(json.dumps(fitted.to_dict())))
    assert loaded == fitted
    assert loaded.estimate(ana_s) == fitted.estimate(ana_s)


def test_references_it_cannot_learn_from_are_refused_clearly() -> None:
    """One class, too few rows or mismatched lengths: a clear InvalidInputError."""
    scores = np.linspace(0, 1, 100)
    with pytest.raises(InvalidInputError, match="both outcomes"):
        CbpeReference.fit(scores, np.ones(100, bool), 0.5)
    with pytest.raises(InvalidInputError, match="at least 20"):
        CbpeReference.fit(scores[:10], np.arange(10) % 2 == 0, 0.5)
    with pytest.raises(InvalidInputError, match="one label per"):
        CbpeReference.fit(scores, np.ones(99, bool), 0.5)
    with pytest.raises(InvalidInputError, match="not a CBPE reference"):
        CbpeReference.from_dict({"threshold": 0.5})


def test_small_empty_and_non_finite_windows() -> None:
    """Non-finite scores are left out; an empty window estimates nothing; a small one is
    marked insufficient and raises no alert."""
    ref_s, ref_y, _, _ = case("calibrated-shift")
    reference = CbpeReference.fit(ref_s, ref_y, THRESHOLD)
    empty = reference.estimate([])
    assert empty["status"] == "insufficient-data"
    assert empty["metrics"] == {}
    small = reference.estimate([0.99] * 5 + [float("nan"), float("inf")])
    assert small["rows"] == 5
    assert small["status"] == "insufficient-data"
    assert small["alerts"] == []
    assert not any(m["alert"] for m in small["metrics"].values())


def test_an_estimate_outside_the_reference_range_alerts() -> None:
    """A window of confident negatives raises specificity and accuracy above the range
    learned from reference chunks: alerts name the metric and the range."""
    ref_s, ref_y, _, _ = case("calibrated-shift")
    reference = CbpeReference.fit(ref_s, ref_y, THRESHOLD)
    out = reference.estimate(np.full(500, 0.02))
    assert out["metrics"]["accuracy"]["alert"]
    assert any(a.startswith("estimated accuracy 0.980 is outside") for a in out["alerts"])


def test_reconcile_reports_difference_and_band() -> None:
    """Realized inside the band: within_band True; outside: False; missing: None."""
    estimated = {"metrics": {"accuracy": {"value": 0.8, "lower": 0.75, "upper": 0.85}}}
    inside = reconcile(estimated, {"accuracy": {"value": 0.83}})["accuracy"]
    assert inside["difference"] == pytest.approx(0.03)
    assert inside["within_band"] is True
    assert reconcile(estimated, {"accuracy": {"value": 0.6}})["accuracy"]["within_band"] is False
    assert reconcile(estimated, {})["accuracy"] == {
        "estimated": 0.8,
        "realized": None,
        "difference": None,
        "within_band": None,
    }
