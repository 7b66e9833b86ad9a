"""Performance estimated before outcomes arrive: confidence-based performance estimation (CBPE).

Outcomes (the confirmed diagnosis) often arrive weeks after the prediction. Until they do,
the expected confusion matrix of a window follows from the model's own scores, once those
scores are calibrated (a calibrated score ``p`` means the case is positive with probability
``p``). For a window of predictions ``pred = score >= threshold`` and calibrated scores ``c``:

* expected ``TP = sum(c[pred])``, ``FP = sum(1 - c[pred])``, ``FN = sum(c[~pred])``,
  ``TN = sum(1 - c[~pred])``;
* ``accuracy = (TP + TN) / n``, ``sensitivity = TP / (TP + FN)``,
  ``specificity = TN / (TN + FP)``, ``precision = TP / (TP + FP)``,
  ``f1 = TP / (TP + (FP + FN) / 2)``;
* ``auroc``: the ROC curve expected under the calibrated scores, ranking by the raw scores
  (cumulated ``c`` as true positives and ``1 - c`` as false positives, trapezoid area).

This is NannyML's CBPE for binary classification, and it is built to agree with it: the
formulas above, the calibration rule and the sampling errors are NannyML 0.13's (checked
against NannyML on the same data: tests/monitoring/test_cbpe.py holds its recorded answers,
``benchmarks/cbpe_agreement.py`` reruns NannyML itself; the stated tolerance is 1e-6 on
estimates, sampling errors, bands and alert limits). One difference is deliberate: a metric
whose expected denominator is zero (precision of a window with no positive prediction) is
None here, 0 in NannyML.

Calibration: isotonic regression of the reference labels on the reference scores
(scikit-learn's ``IsotonicRegression(out_of_bounds="clip")``), stored as its knots. It is
applied only when it helps: across 10 stratified 10 % hold-out splits of the reference
(``random_state=42``), the expected calibration error (10 equal-count bins) of the isotonic
scores must be lower than that of the raw scores; scores already calibrated would otherwise
only gain the step function's noise. Scores that rank almost perfectly (reference AUROC above
0.999) are not recalibrated either. ``calibrated`` in the stored reference says which applied.

Bands: ``sampling_error = std / sqrt(n * fraction)`` with ``std`` and ``fraction`` from the
reference (the spread of the metric's per-row terms and the share of rows those terms cover);
the estimate's band is ``estimate +- 3 sampling errors``, clipped to [0, 1]. Alert limits are
learned from the reference: the realized metric on 10 consecutive reference chunks (a short
remainder is an 11th, as in NannyML), mean
+- 3 standard deviations, clipped to [0, 1]; an estimate outside them is an alert.

CBPE assumes the relation between scores and outcomes (P(Y | score)) holds: it sees
covariate shift and prevalence change through the scores, not concept drift. Reconciliation
with realized values, once outcomes arrive, shows where that assumption failed.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from medops.errors import InvalidInputError

ESTIMATED: Final[tuple[str, ...]] = (
    "accuracy",
    "sensitivity",
    "specificity",
    "precision",
    "f1",
    "auroc",
)
SAMPLING_RANGE: Final = 3.0
BAND_SIGMAS: Final = 3.0
CHUNKS: Final = 10
CALIBRATION_SPLITS: Final = 10
CALIBRATION_BINS: Final = 10
MIN_SAMPLES: Final = 30
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class CbpeReference:
    """What CBPE learned from the reference: calibration, sampling errors, alert limits."""

    threshold: float
    calibrated: bool
    knots_x: tuple[float, ...]
    knots_y: tuple[float, ...]
    sampling: Mapping[str, tuple[float, float]]  # metric -> (std, fraction)
    limits: Mapping[str, tuple[float | None, float | None]]  # metric -> (lower, upper)
    rows: int
    chunk_size: int

    @classmethod
    def fit(
        cls,
        scores: npt.ArrayLike,
        labels: Sequence[bool] | npt.ArrayLike,
        threshold: float,
        *,
        chunk_size: int | None = None,
    ) -> CbpeReference:
        """Learn from the reference scores (positive-class probabilities) and labels.

        ``chunk_size`` is the size of the reference chunks the alert limits are learned
        from (default: a tenth of the reference, rounded down; a remainder is a chunk of its
        own, as NannyML's chunkers keep it)."""
        raw = np.asarray(scores, dtype=np.float64)
        truth = np.asarray(labels, dtype=bool)
        if raw.shape != truth.shape or raw.ndim != 1:
            msg = "CBPE needs one label per reference score"
            raise InvalidInputError(msg)
        keep = np.isfinite(raw)
        raw, truth = raw[keep], truth[keep]
        if len(raw) < 2 * CHUNKS or truth.all() or not truth.any():
            msg = (
                f"CBPE needs at least {2 * CHUNKS} scored reference rows with both outcomes "
                f"(has {len(raw)} rows, {int(truth.sum())} positive)"
            )
            raise InvalidInputError(msg)
        from sklearn.isotonic import IsotonicRegression  # type: ignore[import-untyped]

        iso = IsotonicRegression(out_of_bounds="clip", increasing=True)
        iso.fit(raw, truth.astype(np.float64))
        size = chunk_size or max(1, len(raw) // CHUNKS)
        predicted = raw >= threshold
        return cls(
            threshold=float(threshold),
            calibrated=needs_calibration(truth, raw),
            knots_x=tuple(float(v) for v in iso.X_thresholds_),
            knots_y=tuple(float(v) for v in iso.y_thresholds_),
            sampling=_sampling_components(truth, predicted, raw),
            limits=_limits(truth, predicted, raw, size),
            rows=len(raw),
            chunk_size=size,
        )

    def calibrate(self, scores: FloatArray) -> FloatArray:
        """The calibrated scores (the raw ones when calibration does not help)."""
        if not self.calibrated:
            return scores
        calibrated: FloatArray = np.interp(
            scores, np.asarray(self.knots_x), np.asarray(self.knots_y)
        )
        return calibrated

    def estimate(self, scores: npt.ArrayLike, *, min_samples: int = MIN_SAMPLES) -> dict[str, Any]:
        """The window's estimated metrics with sampling errors, bands and alerts."""
        raw = np.asarray(scores, dtype=np.float64)
        raw = raw[np.isfinite(raw)]
        n = len(raw)
        out: dict[str, Any] = {
            "method": "cbpe",
            "rows": n,
            "calibrated": self.calibrated,
            "status": "ok" if n >= min_samples else "insufficient-data",
            "metrics": {},
            "alerts": [],
        }
        if n == 0:
            out["status"] = "insufficient-data"
            return out
        values = estimate_metrics(self.calibrate(raw), raw, raw >= self.threshold)
        for name in ESTIMATED:
            value = values[name]
            std, fraction = self.sampling[name]
            error = _sampling_error(std, fraction, n)
            lower_limit, upper_limit = self.limits[name]
            band = (
                (max(0.0, value - SAMPLING_RANGE * error), min(1.0, value + SAMPLING_RANGE * error))
                if value is not None and error is not None
                else (None, None)
            )
            alert = (
                out["status"] == "ok"
                and value is not None
                and (
                    (lower_limit is not None and value < lower_limit)
                    or (upper_limit is not None and value > upper_limit)
                )
            )
            out["metrics"][name] = {
                "value": value,
                "sampling_error": error,
                "lower": band[0],
                "upper": band[1],
                "limit_lower": lower_limit,
                "limit_upper": upper_limit,
                "alert": bool(alert),
            }
            if alert:
                out["alerts"].append(
                    f"estimated {name} {value:.3f} is outside the reference range "
                    f"[{_fmt(lower_limit)}, {_fmt(upper_limit)}]"
                )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "calibrated": self.calibrated,
            "knots_x": list(self.knots_x),
            "knots_y": list(self.knots_y),
            "sampling": {k: list(v) for k, v in self.sampling.items()},
            "limits": {k: list(v) for k, v in self.limits.items()},
            "rows": self.rows,
            "chunk_size": self.chunk_size,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CbpeReference:
        try:
            return cls(
                threshold=float(data["threshold"]),
                calibrated=bool(data["calibrated"]),
                knots_x=tuple(float(v) for v in data["knots_x"]),
                knots_y=tuple(float(v) for v in data["knots_y"]),
                sampling={k: (float(v[0]), float(v[1])) for k, v in data["sampling"].items()},
                limits={k: (_opt(v[0]), _opt(v[1])) for k, v in data["limits"].items()},
                rows=int(data["rows"]),
                chunk_size=int(data["chunk_size"]),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            msg = f"not a CBPE reference: {exc}"
            raise InvalidInputError(msg) from None


def estimate_metrics(
    calibrated: FloatArray, raw: FloatArray, predicted: BoolArray
) -> dict[str, float | None]:
    """Expected metrics of one window from calibrated scores (see the module docstring);
    a metric whose expected denominator is zero is None."""
    tp = float(np.sum(calibrated[predicted]))
    fp = float(np.sum(1.0 - calibrated[predicted]))
    fn = float(np.sum(calibrated[~predicted]))
    tn = float(np.sum(1.0 - calibrated[~predicted]))
    counts = _from_counts(tp, fp, fn, tn, len(calibrated))
    return counts | {"auroc": estimate_auroc(calibrated, raw)}


def estimate_auroc(calibrated: FloatArray, raw: FloatArray) -> float | None:
    """Expected AUROC: rank by the raw scores, count calibrated scores as expected positives
    (NannyML's ``estimate_roc_auc``, whose rounding of the cumulated counts to 5 decimals it
    keeps so that the two agree)."""
    if len(raw) < 2:
        return None
    order = np.argsort(raw)[::-1]
    expected = calibrated[order]
    cumulated = np.cumsum(expected)
    zero = np.zeros(1)
    tps = np.round(np.concatenate((zero, cumulated)), 5)
    fps = np.round(np.concatenate((zero, 1 + np.arange(len(expected)) - cumulated)), 5)
    if tps[-1] <= 0 or fps[-1] <= 0:
        return None
    tpr = tps / float(tps[-1])
    fpr = fps / float(fps[-1])
    return float(np.trapezoid(tpr, fpr))


def reconcile(estimated: Mapping[str, Any], realized: Mapping[str, Any]) -> dict[str, Any]:
    """Estimate against the realized value of each metric once outcomes arrived: the
    difference and whether the realized value lies inside the estimate's band.

    ``realized`` is the performance section's ``metrics`` (``{name: {"value": ...}}``); the
    realized values come from the window's labelled rows only, so ``coverage`` (labelled
    share of the window) says how final they are."""
    out: dict[str, Any] = {}
    for name, item in (estimated.get("metrics") or {}).items():
        actual = (realized.get(name) or {}).get("value")
        value = item.get("value")
        inside = (
            actual is not None
            and item.get("lower") is not None
            and item["lower"] <= actual <= item["upper"]
        )
        out[name] = {
            "estimated": value,
            "realized": actual,
            "difference": actual - value if actual is not None and value is not None else None,
            "within_band": bool(inside) if actual is not None else None,
        }
    return out


def needs_calibration(truth: BoolArray, raw: FloatArray) -> bool:
    """Whether isotonic calibration lowers the held-out ECE (NannyML's rule; see the module
    docstring)."""
    from sklearn.isotonic import IsotonicRegression
    from sklearn.metrics import roc_auc_score  # type: ignore[import-untyped]
    from sklearn.model_selection import StratifiedShuffleSplit  # type: ignore[import-untyped]

    counts = np.bincount(truth.astype(np.int64), minlength=2)
    if counts.min() < 2:
        return False
    if roc_auc_score(truth, raw) > 0.999:
        return False
    splitter = StratifiedShuffleSplit(n_splits=CALIBRATION_SPLITS, test_size=0.1, random_state=42)
    held_truth, held_raw, held_calibrated = [], [], []
    target = truth.astype(np.float64)
    for train, test in splitter.split(raw, truth.astype(np.int64)):
        iso = IsotonicRegression(out_of_bounds="clip", increasing=True)
        iso.fit(raw[train], target[train])
        held_truth.append(target[test])
        held_raw.append(raw[test])
        held_calibrated.append(iso.predict(raw[test]))
    y = np.concatenate(held_truth)
    before = _ece(y, np.concatenate(held_raw))
    after = _ece(y, np.concatenate(held_calibrated))
    return bool(before > after)


def _ece(truth: FloatArray, scores: FloatArray) -> float:
    """ECE over equal-count bins of the sorted scores (NannyML's calibration check)."""
    n = len(scores)
    bins = CALIBRATION_BINS
    if n <= 2 * bins:
        bins = n // 2
    width = n // bins
    edges = list(range(0, n + 1, width))
    edges[-1] = n
    order = scores.argsort()
    scores, truth = scores[order], truth[order]
    total = 0.0
    for left, right in itertools.pairwise(edges):
        total += (
            (right - left)
            / n
            * abs(float(np.mean(scores[left:right])) - float(np.mean(truth[left:right])))
        )
    return total


def _sampling_components(
    truth: BoolArray, predicted: BoolArray, raw: FloatArray
) -> dict[str, tuple[float, float]]:
    """Per metric, the spread of its per-row terms and the share of rows they cover."""
    n = len(truth)
    tp = truth & predicted
    fp = ~truth & predicted
    fn = truth & ~predicted
    tn = ~truth & ~predicted

    def spread(ones: BoolArray, zeros: BoolArray) -> float:
        terms = np.r_[np.ones(int(ones.sum())), np.zeros(int(zeros.sum()))]
        return float(np.std(terms)) if len(terms) else math.nan

    relevant = int(tp.sum() + fp.sum() + fn.sum())
    if relevant:
        factor = relevant / ((fn.sum() + fp.sum()) * 0.5 + tp.sum())
        f1_terms = np.r_[np.ones(int(tp.sum())), np.zeros(int(fn.sum() + fp.sum()))] * factor
        f1 = (float(np.std(f1_terms)), relevant / n)
    else:
        f1 = (math.nan, 0.0)
    return {
        "accuracy": (float(np.std((truth == predicted).astype(np.float64))), 1.0),
        "sensitivity": (spread(tp, fn), float(truth.sum()) / n),
        "specificity": (spread(tn, fp), float(tn.sum() + fp.sum()) / n),
        "precision": (spread(tp, fp), float(predicted.sum()) / n),
        "f1": f1,
        "auroc": _auroc_components(truth, raw),
    }


def _auroc_components(truth: BoolArray, raw: FloatArray) -> tuple[float, float]:
    """AUROC's sampling error components (NannyML: AUROC as a Mann-Whitney statistic)."""
    y = truth.astype(np.float64)
    scores = raw
    if np.mean(y) > 0.5:
        y = np.abs(y - 1)
        scores = 1 - scores
    order = np.argsort(scores)
    y = y[order]
    positive_ranks = y * np.arange(len(y))
    indexes = np.unique(positive_ranks)[1:]
    ser = indexes - np.arange(len(indexes))
    positives = float(np.sum(y))
    negatives = len(y) - positives
    return float(np.std(ser / negatives)), positives / len(y)


def _limits(
    truth: BoolArray, predicted: BoolArray, raw: FloatArray, size: int
) -> dict[str, tuple[float | None, float | None]]:
    """Alert limits: realized metrics of consecutive reference chunks, mean +- 3 sigma."""
    n = len(truth)
    per_metric: dict[str, list[float]] = {name: [] for name in ESTIMATED}
    for start in range(0, n, size):  # a short remainder is kept as a chunk (as NannyML)
        end = min(n, start + size)
        chunk = realized_metrics(truth[start:end], raw[start:end], predicted[start:end])
        for name in ESTIMATED:
            value = chunk[name]
            per_metric[name].append(math.nan if value is None else value)
    out: dict[str, tuple[float | None, float | None]] = {}
    for name, values in per_metric.items():
        array = np.asarray(values, dtype=np.float64)
        if np.isnan(array).all():
            out[name] = (None, None)
            continue
        mean = float(np.nanmean(array))
        sigma = float(np.nanstd(array))
        out[name] = (
            max(0.0, mean - BAND_SIGMAS * sigma),
            min(1.0, mean + BAND_SIGMAS * sigma),
        )
    return out


def realized_metrics(
    truth: BoolArray, raw: FloatArray, predicted: BoolArray
) -> dict[str, float | None]:
    """The metrics CBPE estimates, from outcomes (for the reference chunks)."""
    tp = float(np.sum(truth & predicted))
    fp = float(np.sum(~truth & predicted))
    fn = float(np.sum(truth & ~predicted))
    tn = float(np.sum(~truth & ~predicted))
    auroc: float | None = None
    if truth.any() and not truth.all():
        from sklearn.metrics import roc_auc_score

        auroc = float(roc_auc_score(truth, raw))
    return _from_counts(tp, fp, fn, tn, len(truth)) | {"auroc": auroc}


def _from_counts(tp: float, fp: float, fn: float, tn: float, n: int) -> dict[str, float | None]:
    """The confusion-matrix metrics of ``n`` rows (expected or realized counts); None where
    undefined."""
    return {
        "accuracy": (tp + tn) / n if n else None,
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        "precision": _ratio(tp, tp + fp),
        "f1": _ratio(tp, tp + 0.5 * (fp + fn)),
    }


def _sampling_error(std: float, fraction: float, n: int) -> float | None:
    if not (math.isfinite(std) and fraction > 0 and n > 0):
        return None
    return std / math.sqrt(n * fraction)


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
