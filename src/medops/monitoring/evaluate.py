"""One monitoring window against the reference profile: everything the monitor reports.

``evaluate_window`` takes the window's rows as the prediction log holds them (features as
sent, the positive-class score, the outcome where one has arrived) and returns one JSON-safe
document:

* ``features``: per feature, every drift test against the reference (``drift.py``); a feature
  the log does not hold is reported as ``missing-from-log`` rather than failing the window.
  ``previous``: the same against the previous window, when it has enough rows.
* ``dataset``: the features judged drifted and the share of them; with a multiple-testing
  correction (Holm by default) the p-value tests (KS, chi-square) are judged on adjusted
  p-values across features.
* ``multivariate``: PCA reconstruction error against the reference band.
* ``prediction``: drift of the score distribution; ``labels``: drift of the outcome
  prevalence against the reference labels (only rows with outcomes).
* ``performance``: metrics with intervals, change against the validation baseline,
  calibration (only rows with outcomes); ``fairness`` per demographic attribute (numeric ones
  grouped by their declared bands).
* ``estimated``: performance estimated without outcomes (CBPE, ``cbpe.py``) with bands and
  alerts against the reference range; its alerts are raised while fewer than ``min_samples``
  outcomes have arrived. ``reconciliation``: once they have, the estimate for the labelled rows
  against their realized metrics (difference, inside the band or not) and the labelled share.
* ``attribution`` (when the version can be explained): each feature's change of mean
  contribution between the reference and the window, beside whether its input drifted
  (``attribution.py``).
* ``verdict``: ``stable``, ``covariate-shift``, ``concept-drift`` (performance or calibration
  fell while inputs are stable) or ``covariate-shift-with-performance-drop``; ``alerts``.

Windows with fewer than ``min_samples`` rows report ``insufficient-data`` in each part and
raise no alarm.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medops.core.signature import ModelSignature
from medops.monitoring.attribution import attribution_drift, summary_lines
from medops.monitoring.cbpe import reconcile
from medops.monitoring.drift import (
    CategoricalReference,
    DriftResult,
    NumericReference,
    adjust,
    categorical_drift,
    numeric_drift,
)
from medops.monitoring.drift_tests import P_VALUE_TESTS
from medops.monitoring.fairness import fairness
from medops.monitoring.performance import (
    BASELINE_KEYS,
    alerts,
    concept_drift_verdict,
    window_performance,
)
from medops.monitoring.profile import NUMERIC_TYPES, ReferenceProfile, as_numbers
from medops.monitoring.results import DatasetVerdict, Estimated, Multivariate, Performance

MIN_SAMPLES = 30
ACCURACY_DROP = 0.05  # the seed's rule: alert when accuracy drops more than 5 points
ECE_RISE = 0.05


# From this many rows a window's features are tested on one thread per core (below it,
# threads cost more than they save).
PARALLEL_ROWS = 50_000


@dataclass(frozen=True)
class ExplainedWindow:
    """Contributions of the reference rows and of (a sample of) the window's rows."""

    features: tuple[str, ...]
    reference: np.ndarray[Any, Any]
    window: np.ndarray[Any, Any]
    method: str
    scale: str


@dataclass
class WindowRows:
    """The rows of one window, column-oriented, as the prediction log holds them."""

    features: Mapping[str, Sequence[Any] | np.ndarray[Any, Any]]
    scores: Sequence[float] | np.ndarray[Any, Any]
    outcomes: Sequence[bool | None] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.scores)


def evaluate_window(
    profile: ReferenceProfile,
    signature: ModelSignature,
    window: WindowRows,
    *,
    previous: WindowRows | None = None,
    thresholds: Mapping[str, Mapping[str, float | None]] | None = None,
    correction: str | None = "holm",
    min_samples: int = MIN_SAMPLES,
    seed: int = 0,
    explained: ExplainedWindow | None = None,
) -> dict[str, Any]:
    """The window's full monitoring document (see the module docstring)."""
    thresholds = thresholds or {}
    names = list(profile.features)

    def one(name: str) -> list[DriftResult] | None:
        return _feature(name, profile.features[name], window, thresholds.get(name), min_samples)

    if window.rows >= PARALLEL_ROWS and len(names) > 1:
        # Features are independent and their statistics (sorting, binning) run in NumPy with
        # the GIL released: a large window's features go to one thread per core.
        with ThreadPoolExecutor(max_workers=min(len(names), os.cpu_count() or 1)) as pool:
            features = dict(zip(names, pool.map(one, names), strict=True))
    else:
        features = {name: one(name) for name in names}
    dataset = _dataset_verdict(features, correction)
    multivariate = _multivariate(profile, window, min_samples)
    prediction = numeric_drift(
        profile.scores, np.asarray(window.scores, float), feature="score", min_samples=min_samples
    )
    report: dict[str, Any] = {
        "rows": window.rows,
        "labelled": sum(1 for o in window.outcomes if o is not None),
        "status": "ok" if window.rows >= min_samples else "insufficient-data",
        "features": {n: [r.to_dict() for r in rs] if rs else None for n, rs in features.items()},
        "missing_features": sorted(n for n, rs in features.items() if rs is None),
        "dataset": dataset,
        "previous": _against_previous(profile, window, previous, min_samples),
        "multivariate": multivariate,
        "prediction": [r.to_dict() for r in prediction],
    }
    labelled = [i for i, o in enumerate(window.outcomes) if o is not None]
    truth = np.array([bool(window.outcomes[i]) for i in labelled], dtype=bool)
    scores = np.asarray(window.scores, dtype=float)[np.asarray(labelled, dtype=np.int64)]
    label_drift = (
        categorical_drift(profile.labels, truth.tolist(), feature="label", min_samples=min_samples)
        if profile.labels is not None
        else None
    )
    report["labels"] = None if label_drift is None else [r.to_dict() for r in label_drift]
    baseline = {k: v for k, v in profile.baseline.items() if k in BASELINE_KEYS}
    performance = window_performance(
        truth, scores, profile.threshold, baseline=baseline, min_samples=min_samples, seed=seed
    )
    report["performance"] = performance.to_dict()
    report["estimated"], report["reconciliation"] = _estimated(
        profile, window, scores, report["performance"], min_samples
    )
    groups = _groups(signature, profile, window, labelled)
    report["fairness"] = (
        fairness(truth, scores, groups, profile.threshold, min_group_size=min_samples).to_dict()
        if groups and len(labelled) >= min_samples
        else None
    )
    verdict = DatasetVerdict.load(dataset)
    mv = Multivariate.load(multivariate)
    measured = Performance.load(report["performance"])
    estimated = Estimated.load(report["estimated"])
    input_drift = verdict.drifted or mv.drifted
    enough = len(labelled) >= min_samples
    fired = alerts(performance, baseline, accuracy_drop=ACCURACY_DROP, ece_increase=ECE_RISE)
    accuracy = measured.metrics["accuracy"].change
    ece = measured.calibration.ece.change
    performance_drop = enough and accuracy is not None and accuracy < -ACCURACY_DROP
    calibration_drift = enough and ece is not None and ece > ECE_RISE
    report["verdict"] = concept_drift_verdict(input_drift, performance_drop, calibration_drift)
    messages = list(fired)
    if verdict.drifted:
        messages.append(f"input drift in {', '.join(verdict.drifted_features)}")
    if mv.drifted:
        messages.append("multivariate drift: the features no longer move together as before")
    if any(r.drifted for r in prediction):
        messages.append("the score distribution drifted")
    if label_drift and any(r.drifted for r in label_drift):
        messages.append("the outcome prevalence drifted")
    if not enough:  # estimates speak until enough outcomes have arrived
        messages.extend(estimated.alerts)
    report["alerts"] = messages + _attribution(report, explained, verdict, min_samples)
    return report


def _attribution(
    report: dict[str, Any],
    explained: ExplainedWindow | None,
    verdict: DatasetVerdict,
    min_samples: int,
) -> list[str]:
    """Put the attribution part in ``report`` (when the version is explained); its alerts."""
    if explained is None:
        return []
    part = attribution_drift(
        explained.features,
        explained.reference,
        explained.window,
        method=explained.method,
        scale=explained.scale,
        input_drifted=verdict.drifted_features,
        min_samples=min_samples,
    )
    report["attribution"] = part
    return summary_lines(part)


def _estimated(
    profile: ReferenceProfile,
    window: WindowRows,
    labelled_scores: np.ndarray[Any, Any],
    performance: Mapping[str, Any],
    min_samples: int,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """CBPE's estimate for the whole window, and, once enough outcomes arrived, the estimate
    for the labelled rows against their realized metrics."""
    if profile.cbpe is None:
        reason = (
            "the reference profile has no CBPE reference (no labels, one class, or built "
            "before medops estimated performance)"
        )
        return {"method": "cbpe", "status": "not-available", "reason": reason}, None
    estimated = profile.cbpe.estimate(np.asarray(window.scores, float), min_samples=min_samples)
    if len(labelled_scores) < min_samples:
        return estimated, None
    same_rows = profile.cbpe.estimate(labelled_scores, min_samples=min_samples)
    return estimated, {
        "coverage": len(labelled_scores) / window.rows if window.rows else 0.0,
        "labelled": len(labelled_scores),
        "metrics": reconcile(same_rows, performance["metrics"]),
    }


def _feature(
    name: str,
    reference: NumericReference | CategoricalReference,
    window: WindowRows,
    thresholds: Mapping[str, float | None] | None,
    min_samples: int,
) -> list[DriftResult] | None:
    if name not in window.features:
        return None
    values = window.features[name]
    if isinstance(reference, NumericReference):
        return numeric_drift(
            reference, as_numbers(values), thresholds, feature=name, min_samples=min_samples
        )
    return categorical_drift(
        reference, list(values), thresholds, feature=name, min_samples=min_samples
    )


def _dataset_verdict(
    features: Mapping[str, list[DriftResult] | None], correction: str | None
) -> dict[str, Any]:
    """Which features drifted; with a correction, p-value tests judged on adjusted p-values."""
    tested = [(n, r) for n, rs in features.items() if rs for r in rs if r.status == "ok"]
    judged = [
        (n, r)
        for n, r in tested
        if r.test in P_VALUE_TESTS and r.p_value is not None and r.threshold is not None
    ]
    adjusted: dict[tuple[str, str], float] = {}
    if correction and judged:
        values = adjust([r.p_value for _, r in judged], correction)  # type: ignore[arg-type]
        adjusted = {(n, r.test): float(v) for (n, r), v in zip(judged, values, strict=True)}
    drifted = []
    for name, results in features.items():
        for result in results or []:
            key = (name, result.test)
            if key in adjusted:
                assert result.threshold is not None
                hit = result.status == "ok" and adjusted[key] < result.threshold
            else:
                hit = result.drifted
            if hit:
                drifted.append(name)
                break
    judged_features = [n for n, rs in features.items() if rs]
    return {
        "drifted_features": drifted,
        "share": len(drifted) / len(judged_features) if judged_features else 0.0,
        "drifted": bool(drifted),
        "correction": correction,
        "adjusted_p_values": {f"{n}:{t}": v for (n, t), v in adjusted.items()},
    }


def _against_previous(
    profile: ReferenceProfile,
    window: WindowRows,
    previous: WindowRows | None,
    min_samples: int,
) -> dict[str, Any] | None:
    """Each feature against the previous window (its values as the reference)."""
    if previous is None or previous.rows < min_samples:
        return None
    out: dict[str, Any] = {}
    for name, reference in profile.features.items():
        if name not in window.features or name not in previous.features:
            continue
        if isinstance(reference, NumericReference):
            before = NumericReference.fit(as_numbers(previous.features[name]), bins=reference.bins)
            results = numeric_drift(
                before, as_numbers(window.features[name]), feature=name, min_samples=min_samples
            )
        else:
            results = categorical_drift(
                CategoricalReference.fit(list(previous.features[name])),
                list(window.features[name]),
                feature=name,
                min_samples=min_samples,
            )
        out[name] = [r.to_dict() for r in results]
    return out


def _multivariate(
    profile: ReferenceProfile, window: WindowRows, min_samples: int
) -> dict[str, Any]:
    pca = profile.pca
    if pca is None:
        return {"status": "not-available", "drifted": False}
    if any(n not in window.features for n in (*pca.numeric, *pca.categorical)):
        return {"status": "missing-features", "drifted": False}
    numeric = {n: as_numbers(window.features[n]) for n in pca.numeric}
    categorical = {n: list(window.features[n]) for n in pca.categorical}
    return pca.drift(numeric, categorical, min_samples=min_samples)


def _groups(
    signature: ModelSignature,
    profile: ReferenceProfile,
    window: WindowRows,
    labelled: list[int],
) -> dict[str, np.ndarray[Any, Any]]:
    """Demographic group of each labelled row; numeric attributes by their declared bands."""
    specs = {f.name: f for f in signature.inputs}
    groups: dict[str, np.ndarray[Any, Any]] = {}
    for name in profile.demographic:
        if name not in window.features or name not in specs:
            continue
        spec = specs[name]
        values = [window.features[name][i] for i in labelled]
        if spec.type in NUMERIC_TYPES and spec.bands:
            numbers = as_numbers(values)
            labels = [spec.band_of(float(v)) if np.isfinite(v) else "missing" for v in numbers]
        else:
            labels = ["missing" if v is None else str(v) for v in values]
        groups[name] = np.asarray(labels, dtype=str)
    return groups
