"""Scripted monitoring scenarios on the diabetes model: each seeded shift is detected and
named, and an unshifted control raises nothing.

Patients are drawn from a Gaussian fitted to the diabetes data (sex 1 or 2, age rounded);
the outcome is drawn from the model's own score, so on reference data the model is calibrated
and the reference profile's baseline is its performance there.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import numpy as np

from medops.core.onnx_model import OnnxModel
from medops.core.signature import ModelSignature
from medops.monitoring.evaluate import WindowRows, evaluate_window
from medops.monitoring.performance import window_performance
from medops.monitoring.profile import ReferenceProfile
from tests.helpers import model_data

FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
WINDOW = 2000


def patients(n: int, seed: int, shift: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    """``n`` patients; ``shift`` moves features by that many standard deviations."""
    x_train, x_eval, _, _ = model_data.frames()
    data = np.vstack([x_train.to_numpy(), x_eval.to_numpy()])
    rng = np.random.default_rng(seed)
    rows = rng.multivariate_normal(data.mean(axis=0), np.cov(data, rowvar=False), size=n)
    columns = {name: rows[:, i] for i, name in enumerate(FEATURES)}
    columns["sex"] = rng.choice([1.0, 2.0], size=n)
    columns["age"] = np.clip(np.round(columns["age"]), 18, 110)
    for name, sigmas in (shift or {}).items():
        columns[name] = columns[name] + sigmas * data[:, FEATURES.index(name)].std()
    return columns


def scores(columns: dict[str, np.ndarray]) -> np.ndarray:
    pkg = model_data.package()
    model = OnnxModel(pkg.onnx, pkg.signature)
    return np.asarray(model.positive_scores({k: v.tolist() for k, v in columns.items()}))


@cache
def reference() -> tuple[ReferenceProfile, ModelSignature]:
    """The profile of 5,000 reference patients, baseline = the model's performance there."""
    columns = patients(5000, seed=1)
    p = scores(columns)
    labels = np.random.default_rng(2).random(p.size) < p
    measured = window_performance(labels, p, 0.5).to_dict()
    baseline = {k: v["value"] for k, v in measured["metrics"].items()}
    baseline["ece"] = measured["calibration"]["ece"]["value"]
    signature = model_data.package().signature
    profile = ReferenceProfile.build(
        signature, {k: v.tolist() for k, v in columns.items()}, p, labels.tolist(),
        baseline=baseline, threshold=0.5,
    )  # fmt: skip
    return profile, signature


def window(
    seed: int,
    *,
    shift: dict[str, float] | None = None,
    outcome: Any = None,
    labelled: bool = True,
) -> dict[str, Any]:
    """Evaluate a window of ``WINDOW`` patients; ``outcome(p, columns, rng)`` draws labels."""
    profile, signature = reference()
    columns = patients(WINDOW, seed=seed, shift=shift)
    p = scores(columns)
    rng = np.random.default_rng(seed + 1000)
    labels = outcome(p, columns, rng) if outcome else rng.random(p.size) < p
    rows = WindowRows(
        features={k: v.tolist() for k, v in columns.items()},
        scores=p.tolist(),
        outcomes=[bool(v) for v in labels] if labelled else [None] * len(labels),
    )
    report = evaluate_window(profile, signature, rows)
    json.dumps(report, allow_nan=False)  # the stored document is plain JSON
    return report


def test_an_unshifted_control_raises_nothing() -> None:
    """Same population, same outcome model: stable, no drifted feature, no alert."""
    report = window(seed=10)
    assert report["dataset"]["drifted_features"] == []
    assert not report["multivariate"]["drifted"]
    assert report["verdict"] == "stable"
    assert report["alerts"] == []


def test_a_scanner_like_shift_in_numeric_features_is_a_covariate_shift() -> None:
    """bmi and bp read one standard deviation high (a new device): both flagged, the
    others not, and the verdict names a covariate shift."""
    report = window(seed=11, shift={"bmi": 1.0, "bp": 1.0})
    assert set(report["dataset"]["drifted_features"]) == {"bmi", "bp"}
    assert report["verdict"].startswith("covariate-shift")
    assert any("input drift" in a for a in report["alerts"])
    assert any(r["drifted"] for r in report["prediction"])  # the scores moved with them


def test_a_prevalence_shift_is_label_drift() -> None:
    """Far more positive outcomes than the reference had (a seasonal surge), inputs
    unchanged: label drift is flagged, the inputs are not."""

    def surge(p: np.ndarray, _columns: Any, rng: np.random.Generator) -> np.ndarray:
        odds = p / (1 - p) * 6.0
        surged: np.ndarray = rng.random(p.size) < odds / (1 + odds)
        return surged

    report = window(seed=12, outcome=surge)
    assert report["dataset"]["drifted_features"] == []
    assert any(r["drifted"] for r in report["labels"])
    assert any("prevalence" in a for a in report["alerts"])


def test_a_concept_shift_with_stable_inputs_is_concept_drift() -> None:
    """The same patients, but outcomes no longer follow the score (a new protocol):
    inputs stable, accuracy and calibration fall, the verdict is concept drift."""

    def new_protocol(p: np.ndarray, _columns: Any, rng: np.random.Generator) -> np.ndarray:
        return rng.random(p.size) < 1 - p

    report = window(seed=13, outcome=new_protocol)
    assert report["dataset"]["drifted_features"] == []
    assert not report["multivariate"]["drifted"]
    assert report["verdict"] == "concept-drift"
    assert report["performance"]["metrics"]["accuracy"]["change"] < -0.05
    assert any("accuracy dropped" in a for a in report["alerts"])


def test_a_shift_in_one_demographic_group_shows_in_fairness() -> None:
    """Outcomes stop following the score for sex = 2 only: that group's sensitivity ratio to
    the other group falls to critical; overall inputs stay stable."""

    def one_group(p: np.ndarray, columns: Any, rng: np.random.Generator) -> np.ndarray:
        flipped = np.where(columns["sex"] == 2.0, 1 - p, p)
        return rng.random(p.size) < flipped

    report = window(seed=14, outcome=one_group)
    assert report["dataset"]["drifted_features"] == []
    sex = next(a for a in report["fairness"]["attributes"] if a["attribute"] == "sex")
    groups = {g["group"]: g["metrics"] for g in sex["groups"]}
    assert sex["reference_group"] == "1.0"  # the larger group in this draw
    assert groups["2.0"]["sensitivity"]["level"] == "critical"
    assert groups["2.0"]["sensitivity"]["ratio"] < 0.667
    assert groups["1.0"]["sensitivity"]["level"] == "ok"


def test_bad_windows_are_reported_and_never_crash() -> None:
    """A window with NaN and infinite values, an unseen category value, a feature missing
    from the log, and no outcomes yet: reported, insufficient where it must be, no error."""
    profile, signature = reference()
    columns = patients(100, seed=20)
    features: dict[str, list[Any]] = {k: v.tolist() for k, v in columns.items()}
    features["bmi"][:10] = [float("nan")] * 5 + [float("inf")] * 5
    features["sex"][:3] = ["unknown", None, "x"]
    del features["s6"]
    rows = WindowRows(features=features, scores=scores(columns).tolist(), outcomes=[None] * 100)
    report = evaluate_window(profile, signature, rows)
    json.dumps(report, allow_nan=False)
    assert report["missing_features"] == ["s6"]
    assert report["multivariate"]["status"] == "missing-features"
    assert report["performance"]["status"] == "insufficient-data"
    assert report["fairness"] is None
    empty = evaluate_window(profile, signature, WindowRows(features={}, scores=[], outcomes=[]))
    assert empty["status"] == "insufficient-data"
    assert empty["alerts"] == []


def test_before_outcomes_the_estimate_speaks_and_afterwards_it_is_reconciled() -> None:
    """A large covariate shift with no outcomes yet: CBPE estimates the window's accuracy
    and says it fell outside the reference range; once outcomes (drawn from the calibrated
    score) arrive, the realized accuracy lies in the estimate's band."""
    shift = {"bmi": 2.5, "s5": 2.5}
    before = window(seed=14, shift=shift, labelled=False)
    assert before["labelled"] == 0
    assert before["reconciliation"] is None
    estimate = before["estimated"]["metrics"]["accuracy"]
    assert estimate["alert"]
    assert any(a.startswith("estimated accuracy") for a in before["alerts"])
    after = window(seed=14, shift=shift)
    assert after["estimated"] == before["estimated"]
    reconciled = after["reconciliation"]["metrics"]
    for metric in ("accuracy", "auroc", "f1"):
        assert reconciled[metric]["within_band"], (metric, reconciled[metric])
    assert not any(a.startswith("estimated") for a in after["alerts"])  # realized speaks now


def test_reconciliation_exposes_concept_drift_the_estimate_cannot_see() -> None:
    """Outcomes no longer follow the score: the estimate (which trusts the score) stays near
    the reference, the realized accuracy falls far outside its band."""

    def new_protocol(p: np.ndarray, _columns: Any, rng: np.random.Generator) -> np.ndarray:
        return rng.random(p.size) < 1 - p

    report = window(seed=15, outcome=new_protocol)
    accuracy = report["reconciliation"]["metrics"]["accuracy"]
    assert not report["estimated"]["metrics"]["accuracy"]["alert"]
    assert accuracy["within_band"] is False
    assert accuracy["difference"] < -0.1
