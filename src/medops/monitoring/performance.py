"""Performance, calibration and fairness of a binary classifier over one monitoring window.

Pure functions over the predictions of one window whose outcomes have arrived: labels
(True = positive) and scores (the positive-class probability) in, frozen results with a
JSON-safe ``to_dict()`` out (plain ``float``/``int``/``str``/``None``, never NaN).

Metrics (``METRICS``), computed by ``medops.core.metrics`` and equal to scikit-learn on the
same data (checked on randomized inputs in ``tests/monitoring/test_performance.py``):
predictions are ``score >= threshold``; ``accuracy``; ``sensitivity`` (recall of class 1);
``specificity`` (recall of class 0); ``precision`` (PPV, the registry's ``ppv``); ``f1``
(``2 tp / (2 tp + fp + fn)``); ``auroc`` (``roc_auc_score``, ties count one half); ``brier``
(mean of ``(score - label) ** 2``). A metric whose denominator is zero (AUROC with one class,
precision when nothing is flagged, ...) is ``None``, never 0.

Intervals: bootstrap over ``n_bootstrap`` resamples of the window's rows, drawn from
``numpy.random.default_rng(seed)``, made as the validation report makes them
(``registry.metrics.bca_intervals``): BCa for every metric, and for ECE (biased upwards under
resampling) a one-sided upper bound from 0; every interval contains its estimate, and
``ci_method`` says how it was made. Resamples where a metric is undefined are dropped and no
interval is given when under half define it. ``change`` is ``value - baseline[name]`` when
both are defined.

Calibration: ``ece`` is the registry report's definition (``n_bins`` equal-width bins on
[0, 1], ``lower <= score < upper`` with 1.0 in the last bin, ECE = sum over bins of
``count / n * |mean score - observed rate|``), with its bootstrap interval. Slope and
intercept come from logistic recalibration: the unpenalized maximum-likelihood fit of
``P(y = 1) = expit(a + b * logit(p))`` with ``p`` clipped to ``[1e-6, 1 - 1e-6]``, solved by
Newton iterations with step halving. Perfect calibration gives ``b = 1, a = 0``;
overconfident scores give ``b < 1``. Both are ``None`` when the fit has no finite maximum
(one class, separable data, constant scores).

Status: ``"insufficient-data"`` when the window has fewer than ``min_samples`` rows (default
30) or only one class (``reason`` says which); values that can still be computed are still
reported, as in ``medops.monitoring.drift``. ``alerts`` never fires on a window under
``min_samples`` rows.
Fairness across demographic groups is in ``medops.monitoring.fairness``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from medops.core.metrics import (
    BoolArray,
    FloatArray,
    Interval,
    ScoreLevels,
    bca_intervals,
    bootstrap_distribution,
    calibration_bin,
    confusion_at,
    point_metrics,
)
from medops.errors import InvalidInputError

Status = Literal["ok", "insufficient-data"]
GroupStatus = Literal["ok", "censored"]
Level = Literal["ok", "warning", "critical"]
Verdict = Literal[
    "stable", "covariate-shift", "concept-drift", "covariate-shift-with-performance-drop"
]

METRICS: Final[tuple[str, ...]] = (
    "accuracy",
    "sensitivity",
    "specificity",
    "precision",
    "f1",
    "auroc",
    "brier",
)
BASELINE_KEYS: Final = frozenset({*METRICS, "ece"})
MIN_SAMPLES: Final = 30
DEFAULT_BINS: Final = 10
CLIP: Final = 1e-6
REGISTRY_NAME: Final = {"precision": "ppv"}
LEVEL_ORDER: Final[dict[Level, int]] = {"ok": 0, "warning": 1, "critical": 2}
_NEWTON_MAX_ITER: Final = 100
_NEWTON_TOL: Final = 1e-10
_MAX_CONDITION: Final = 1e12


# --- results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricValue:
    """One metric of a window: point value, bootstrap interval, baseline and change."""

    value: float | None
    ci_low: float | None
    ci_high: float | None
    baseline: float | None = None
    change: float | None = None  # value - baseline
    ci_method: str | None = None  # see registry.metrics: bca, bc, upper-bound, ...

    def to_dict(self) -> dict[str, float | str | None]:
        """JSON-safe form."""
        return {
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "ci_method": self.ci_method,
            "baseline": self.baseline,
            "change": self.change,
        }


@dataclass(frozen=True)
class ReliabilityBin:
    """One equal-width bin of the reliability curve (means are None for an empty bin)."""

    lower: float
    upper: float
    count: int
    mean_predicted: float | None
    observed_rate: float | None

    def to_dict(self) -> dict[str, float | int | None]:
        """JSON-safe form."""
        return {
            "lower": self.lower,
            "upper": self.upper,
            "count": self.count,
            "mean_predicted": self.mean_predicted,
            "observed_rate": self.observed_rate,
        }


@dataclass(frozen=True)
class Calibration:
    """ECE (with interval), logistic recalibration slope and intercept, reliability curve."""

    ece: MetricValue
    slope: float | None
    intercept: float | None
    n_bins: int
    bins: tuple[ReliabilityBin, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "ece": self.ece.to_dict(),
            "slope": self.slope,
            "intercept": self.intercept,
            "n_bins": self.n_bins,
            "bins": [row.to_dict() for row in self.bins],
        }


@dataclass(frozen=True)
class PerformanceResult:
    """Performance and calibration of one window; see the module docstring."""

    n: int
    positives: int
    threshold: float
    status: Status
    reason: str | None  # why the status is "insufficient-data"
    min_samples: int
    metrics: Mapping[str, MetricValue]
    confusion: Mapping[str, int]  # tp, fp, tn, fn
    calibration: Calibration
    bootstrap: Mapping[str, Any]  # n, seed, confidence, method

    @property
    def prevalence(self) -> float | None:
        """Share of positive rows, None for an empty window."""
        return self.positives / self.n if self.n else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "n": self.n,
            "positives": self.positives,
            "prevalence": self.prevalence,
            "threshold": self.threshold,
            "status": self.status,
            "reason": self.reason,
            "min_samples": self.min_samples,
            "metrics": {name: value.to_dict() for name, value in self.metrics.items()},
            "confusion": dict(self.confusion),
            "calibration": self.calibration.to_dict(),
            "bootstrap": dict(self.bootstrap),
        }


def window_performance(
    labels: npt.ArrayLike,
    scores: npt.ArrayLike,
    threshold: float,
    *,
    baseline: Mapping[str, float | None] | None = None,
    n_bootstrap: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
    min_samples: int = MIN_SAMPLES,
    n_bins: int = DEFAULT_BINS,
) -> PerformanceResult:
    """Metrics with bootstrap intervals and calibration of one window of predictions.

    Raises ``InvalidInputError`` for malformed input (labels not 0/1, scores outside [0, 1],
    lengths that differ, a baseline key that is not a metric, bad options).
    """
    truth, values = _validate(labels, scores)
    threshold = _number(threshold, "threshold", 0.0, 1.0, closed=True)
    confidence = _number(confidence, "confidence", 0.0, 1.0, closed=False)
    _positive_int(n_bins, "n_bins")
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int) or n_bootstrap < 0:
        raise InvalidInputError(f"n_bootstrap must be an integer >= 0, not {n_bootstrap!r}")
    base = _validate_baseline(baseline)
    n, positives = int(truth.size), int(truth.sum())
    points, intervals, confusion = _points_and_intervals(
        truth, values, threshold, n_bins, n_bootstrap, seed, confidence
    )

    def metric(name: str) -> MetricValue:
        value, interval = points[name], intervals[name]
        reference = base.get(name)
        defined = value is not None and interval.low is not None
        return MetricValue(
            value=value,
            ci_low=interval.low if defined else None,
            ci_high=interval.high if defined else None,
            ci_method=interval.method if defined else None,
            baseline=reference,
            change=None if value is None or reference is None else value - reference,
        )

    slope, intercept = calibration_slope_intercept(truth, values)
    status: Status = "ok"
    reason = None
    if n < min_samples:
        status, reason = "insufficient-data", f"n < {min_samples}"
    elif positives in (0, n):
        status, reason = "insufficient-data", "one class only"
    return PerformanceResult(
        n=n,
        positives=positives,
        threshold=threshold,
        status=status,
        reason=reason,
        min_samples=min_samples,
        metrics={name: metric(REGISTRY_NAME.get(name, name)) for name in METRICS},
        confusion=confusion,
        calibration=Calibration(
            ece=metric("ece"),
            slope=slope,
            intercept=intercept,
            n_bins=n_bins,
            bins=reliability_curve(truth, values, n_bins),
        ),
        bootstrap={
            "n": n_bootstrap,
            "seed": seed,
            "confidence": confidence,
            "method": "bca",
        },
    )


def _points_and_intervals(
    truth: BoolArray,
    values: FloatArray,
    threshold: float,
    n_bins: int,
    n_bootstrap: int,
    seed: int,
    confidence: float,
) -> tuple[dict[str, float | None], dict[str, Interval], dict[str, int]]:
    if truth.size == 0:
        names = [*METRICS, "ppv", "ece"]
        return (
            dict.fromkeys(names),
            dict.fromkeys(names, Interval(None, None, None)),
            {"tp": 0, "fp": 0, "tn": 0, "fn": 0},
        )
    levels = ScoreLevels.build(truth, values, n_bins)
    spread = bootstrap_distribution(
        levels, threshold=threshold, n_bootstrap=n_bootstrap, rng=np.random.default_rng(seed)
    )
    points = point_metrics(levels, threshold)
    intervals = bca_intervals(levels, spread, points, threshold=threshold, confidence=confidence)
    found = confusion_at(levels.values, *levels.counts(), threshold)
    confusion = {
        "tp": int(found.tp[0]),
        "fp": int(found.fp[0]),
        "tn": int(found.tn[0]),
        "fn": int(found.fn[0]),
    }
    return points, intervals, confusion


def reliability_curve(
    labels: BoolArray, scores: FloatArray, n_bins: int = DEFAULT_BINS
) -> tuple[ReliabilityBin, ...]:
    """Per equal-width bin: mean score, observed positive rate and count (all bins)."""
    bins = calibration_bin(scores, n_bins)
    counts = np.bincount(bins, minlength=n_bins)
    sum_scores = np.bincount(bins, weights=scores, minlength=n_bins)
    sum_labels = np.bincount(bins, weights=labels.astype(np.float64), minlength=n_bins)
    return tuple(
        ReliabilityBin(
            lower=j / n_bins,
            upper=(j + 1) / n_bins,
            count=int(counts[j]),
            mean_predicted=float(sum_scores[j] / counts[j]) if counts[j] else None,
            observed_rate=float(sum_labels[j] / counts[j]) if counts[j] else None,
        )
        for j in range(n_bins)
    )


def calibration_slope_intercept(
    labels: BoolArray, scores: FloatArray
) -> tuple[float | None, float | None]:
    """Slope ``b`` and intercept ``a`` of ``P(y=1) = expit(a + b * logit(p))``; see the docs.

    ``(None, None)`` when the likelihood has no finite maximum: one class, constant scores, or
    (quasi-)separation, where Newton's method does not converge.
    """
    y = labels.astype(np.float64)
    if y.size == 0 or y.min() == y.max():
        return None, None
    p = np.clip(scores, CLIP, 1.0 - CLIP)
    design = np.column_stack([np.ones_like(p), np.log(p) - np.log1p(-p)])
    beta = np.zeros(2)
    loglik = _loglik(design @ beta, y)
    for _ in range(_NEWTON_MAX_ITER):
        eta = design @ beta
        mu = _expit(eta)
        gradient = design.T @ (y - mu)
        hessian = (design * (mu * (1.0 - mu))[:, None]).T @ design
        condition = float(np.linalg.cond(hessian))
        if not condition < _MAX_CONDITION:  # also catches NaN and inf
            return None, None
        step = np.linalg.solve(hessian, gradient)
        # Step halving keeps every iterate an ascent step of the (concave) log-likelihood.
        for _ in range(50):
            candidate = _loglik(design @ (beta + step), y)
            if candidate >= loglik - 1e-12 * abs(loglik):
                break
            step = step / 2.0
        beta, loglik = beta + step, candidate
        if float(np.max(np.abs(step))) < _NEWTON_TOL * (1.0 + float(np.max(np.abs(beta)))):
            return float(beta[1]), float(beta[0])
    return None, None


def _expit(eta: FloatArray) -> FloatArray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * eta)), dtype=np.float64)


def _loglik(eta: FloatArray, y: FloatArray) -> float:
    # y * eta - log(1 + exp(eta)), stable for large |eta|.
    return float(np.sum(y * eta - np.logaddexp(0.0, eta)))


# --- verdicts and alerts ------------------------------------------------------------------


def concept_drift_verdict(
    input_drift: bool, performance_drop: bool, calibration_drift: bool
) -> Verdict:
    """Classify a window: did the inputs move, did the model's quality fall, or both?

    ``"concept-drift"`` is quality (performance or calibration) falling while the inputs are
    stable: the relation between inputs and outcome changed.
    """
    degraded = performance_drop or calibration_drift
    if input_drift:
        return "covariate-shift-with-performance-drop" if degraded else "covariate-shift"
    return "concept-drift" if degraded else "stable"


def alerts(
    result: PerformanceResult,
    baseline: Mapping[str, float | None],
    *,
    accuracy_drop: float = 0.05,
    ece_increase: float = 0.05,
) -> list[str]:
    """Alert messages: accuracy fell by more than ``accuracy_drop`` (absolute) below the
    baseline, or ECE rose by more than ``ece_increase`` above it.

    A window under ``result.min_samples`` rows raises no alert; a metric that is undefined in
    the window or absent from the baseline is not judged.
    """
    base = _validate_baseline(baseline)
    if result.n < result.min_samples:
        return []
    found: list[str] = []
    accuracy, accuracy_base = result.metrics["accuracy"].value, base.get("accuracy")
    if accuracy is not None and accuracy_base is not None:
        drop = accuracy_base - accuracy
        if drop > accuracy_drop:
            found.append(
                f"accuracy dropped {100 * drop:.1f} points, from {accuracy_base:.3f} to "
                f"{accuracy:.3f} (limit {100 * accuracy_drop:.1f} points)"
            )
    ece, ece_base = result.calibration.ece.value, base.get("ece")
    if ece is not None and ece_base is not None and ece - ece_base > ece_increase:
        found.append(
            f"ECE rose by {ece - ece_base:.3f}, from {ece_base:.3f} to {ece:.3f} "
            f"(limit {ece_increase:.3f})"
        )
    return found


# --- fairness -----------------------------------------------------------------------------


def _validate(labels: npt.ArrayLike, scores: npt.ArrayLike) -> tuple[BoolArray, FloatArray]:
    raw_labels, raw_scores = np.asarray(labels), np.asarray(scores)
    if raw_labels.ndim != 1 or raw_labels.dtype.kind not in "biuf":
        raise InvalidInputError("labels must be a one-dimensional array of 0/1 or booleans")
    if not bool(np.all((raw_labels == 0) | (raw_labels == 1))):
        raise InvalidInputError("every label must be 0 or 1")
    if raw_scores.ndim != 1 or raw_scores.dtype.kind not in "biuf":
        raise InvalidInputError("scores must be a one-dimensional array of numbers")
    values = raw_scores.astype(np.float64)
    if not bool(np.all(np.isfinite(values) & (values >= 0.0) & (values <= 1.0))):
        raise InvalidInputError("every score must be a probability in [0, 1]")
    if values.size != raw_labels.size:
        raise InvalidInputError(f"scores has {values.size} values but labels has {raw_labels.size}")
    truth: BoolArray = raw_labels == 1
    return truth, values


def _validate_baseline(baseline: Mapping[str, float | None] | None) -> dict[str, float | None]:
    found = dict(baseline or {})
    if unknown := sorted(set(found) - BASELINE_KEYS):
        raise InvalidInputError(f"baseline keys {unknown} are not metrics: {sorted(BASELINE_KEYS)}")
    for key, value in found.items():
        if value is not None and not math.isfinite(value):
            raise InvalidInputError(f"baseline[{key!r}] must be finite or None, not {value!r}")
    return {key: None if value is None else float(value) for key, value in found.items()}


def _number(value: float, field: str, low: float, high: float, *, closed: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInputError(f"{field} must be a finite number, not {value!r}")
    inside = low <= value <= high if closed else low < value < high
    if not inside:
        raise InvalidInputError(
            f"{field} must be in {'[' if closed else '('}{low:g}, {high:g}{']' if closed else ')'}"
        )
    return float(value)


def _positive_int(value: int, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{field} must be a positive integer, not {value!r}")
