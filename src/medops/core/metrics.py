"""Vectorized binary-classification metrics and their percentile bootstrap.

Every metric is computed from per-score-level counts: the data's distinct scores are sorted
once (``ScoreLevels``), and a data set or a bootstrap resample is reduced to two count
matrices ``pos[b, k]`` and ``neg[b, k]`` (rows of resample ``b`` whose score is the ``k``-th
distinct score, by label). All metrics of many resamples then come from cumulative sums over
those matrices, with no per-resample sort or Python loop.

Definitions (equal to scikit-learn on the same data, to floating-point rounding):

- predictions are ``score >= threshold``;
- ``auroc`` is ``roc_auc_score``: the Mann-Whitney statistic with tied scores counted as one
  half (average ranks);
- ``auprc`` is ``average_precision_score``: the step-wise sum of precision times the increase
  in recall at each distinct score, not the trapezoidal area;
- ``accuracy``, ``sensitivity`` (recall of class 1), ``specificity`` (recall of class 0),
  ``ppv`` (precision of class 1), ``npv`` (precision of class 0) and ``f1``
  (``2 tp / (2 tp + fp + fn)``) as their scikit-learn functions;
- ``brier`` is ``brier_score_loss``: the mean of ``(score - label) ** 2``;
- ``ece`` uses ``n_bins`` equal-width bins on [0, 1] with edges ``j / n_bins``; a bin holds
  ``lower <= score < upper`` and the last bin also holds 1.0; ECE is the sum over bins of
  ``count / n * |mean score - fraction positive|``.

Undefined values: a metric whose denominator is zero (AUROC or AUPRC without both classes,
PPV when nothing is flagged, ...) is NaN in the arrays of this module and ``None`` in reports,
never 0: scikit-learn returns 0 (with a warning) for some of these, which would read as a
real, very bad result.

Bootstrap: resamples drawn with replacement from ``numpy.random.Generator.integers``;
resamples where a metric is undefined are dropped, and no interval is given when fewer than
half of the resamples define the metric. Every interval contains its own estimate:

- ECE gets a one-sided interval, ``[0, upper bound]`` at the confidence level (method
  ``upper-bound``). ECE sums absolute residuals, so it is biased upwards, and more so under
  resampling: a calibrated model's subgroup showed 0.0358 with a percentile interval of 0.0411
  to 0.1090, and no two-sided bootstrap interval (percentile, basic or BCa) contains an
  estimate that fewer than ``(1 - confidence) / 2`` of the resamples fall below. What a reader
  (and a ``max_ece`` gate) needs is how large the error could be: the resampled upper bound is
  conservative, since the resamples' ECE overstates the sample's as the sample's overstates the
  truth.
- Every other metric gets the bias-corrected and accelerated interval (BCa, Efron 1987): the
  percentiles shift by the share of resamples below the estimate (``z0``) and by the skewness
  of the jackknife (``a``). The jackknife is computed on counts: leaving out one row of a
  score level and label gives the same value for every such row, so it costs one evaluation
  per distinct (level, label), while that stays under ``JACKKNIFE_MAX_CELLS`` cells; past it
  (very large data, where the acceleration is negligible) ``a`` is 0 (method ``bc``). Where
  every resample lies on one side of the estimate ``z0`` is infinite: the percentile interval
  is used (``percentile``). Where fewer than ``(1 - confidence) / 2`` of the resamples lie on
  one side, no bootstrap interval contains the estimate; the interval is then widened to it
  and its method says so (``bca-widened``, ``bc-widened``, ``percentile-widened``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import special  # type: ignore[import-untyped]

from medops.core.metric_names import REPORT_METRICS

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

METRIC_NAMES: tuple[str, ...] = REPORT_METRICS
THRESHOLD_METRIC_NAMES: tuple[str, ...] = (
    "sensitivity",
    "specificity",
    "ppv",
    "npv",
    "f1",
    "accuracy",
)
# Bound on resamples x rows held at once: about 16 MB per int64 or float64 matrix.
MAX_CELLS_PER_CHUNK = 2_000_000
# Bound on the jackknife's (distinct leave-one-out cases) x (score levels) cells: about
# 0.1 s; past it (over ~2,200 rows with distinct scores) the acceleration is left at 0.
JACKKNIFE_MAX_CELLS = 5_000_000


def calibration_bin(scores: FloatArray, n_bins: int) -> IntArray:
    """The equal-width bin of each score: ``lower <= score < upper``, 1.0 in the last bin."""
    edges = np.arange(n_bins + 1, dtype=np.float64) / n_bins
    bins = np.searchsorted(edges, scores, side="right") - 1
    return np.clip(bins, 0, n_bins - 1).astype(np.int64)


@dataclass(frozen=True)
class ScoreLevels:
    """A data set reduced to its distinct scores (ascending) and each row's level among them."""

    values: FloatArray
    # Each row's level and label in one key: 2 * level + label.
    row_key: IntArray
    bin_starts: IntArray
    n_bins: int

    @classmethod
    def build(cls, labels: BoolArray, scores: FloatArray, n_bins: int) -> ScoreLevels:
        """Sort the distinct scores once; ``labels`` are booleans (True = positive)."""
        values, inverse = np.unique(scores, return_inverse=True)
        level_bins = calibration_bin(values, n_bins)
        starts = np.flatnonzero(np.r_[True, np.diff(level_bins) != 0]).astype(np.int64)
        return cls(
            values=values.astype(np.float64),
            row_key=2 * inverse.reshape(-1).astype(np.int64) + labels.astype(np.int64),
            bin_starts=starts,
            n_bins=n_bins,
        )

    @property
    def n(self) -> int:
        """Number of rows."""
        return int(self.row_key.shape[0])

    def counts(self) -> tuple[FloatArray, FloatArray]:
        """Positive and negative counts per level of the data itself, shape ``(1, K)``."""
        return self.resample_counts(np.arange(self.n, dtype=np.int64)[None, :])

    def resample_counts(self, idx: IntArray) -> tuple[FloatArray, FloatArray]:
        """Positive and negative counts per level of each row of ``idx``, shape ``(B, K)``."""
        n_rows, n_levels = idx.shape[0], self.values.shape[0]
        size = 2 * n_rows * n_levels
        # 32-bit keys when they fit: half the memory traffic of the gather and the count.
        dtype = np.int32 if size < 2**31 else np.int64
        offsets = np.arange(0, size, 2 * n_levels, dtype=dtype)[:, None]
        keys = (offsets + self.row_key.astype(dtype)[idx]).ravel()
        counts = np.bincount(keys, minlength=size).reshape(n_rows, n_levels, 2)
        return counts[:, :, 1].astype(np.float64), counts[:, :, 0].astype(np.float64)


def divide(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    """Element-wise ratio, NaN where the denominator is zero."""
    out = np.full(np.broadcast(numerator, denominator).shape, np.nan, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


@dataclass(frozen=True)
class Confusion:
    """Confusion counts per resample at one threshold (float arrays of shape ``(B,)``)."""

    tp: FloatArray
    fp: FloatArray
    tn: FloatArray
    fn: FloatArray

    def rates(self) -> dict[str, FloatArray]:
        """The threshold metrics, NaN where undefined."""
        n = self.tp + self.fp + self.tn + self.fn
        return {
            "sensitivity": divide(self.tp, self.tp + self.fn),
            "specificity": divide(self.tn, self.tn + self.fp),
            "ppv": divide(self.tp, self.tp + self.fp),
            "npv": divide(self.tn, self.tn + self.fn),
            "f1": divide(2 * self.tp, 2 * self.tp + self.fp + self.fn),
            "accuracy": divide(self.tp + self.tn, n),
        }


def confusion_at(
    values: FloatArray, pos: FloatArray, neg: FloatArray, threshold: float
) -> Confusion:
    """Confusion counts when rows with ``score >= threshold`` are predicted positive."""
    first = int(np.searchsorted(values, threshold, side="left"))
    tp = pos[:, first:].sum(axis=1)
    fp = neg[:, first:].sum(axis=1)
    return Confusion(tp=tp, fp=fp, tn=neg.sum(axis=1) - fp, fn=pos.sum(axis=1) - tp)


def _ranking_metrics(pos: FloatArray, neg: FloatArray) -> dict[str, FloatArray]:
    # Every product and sum below is of whole numbers (or halves) under 2**53, hence exact.
    cum_pos = np.cumsum(pos, axis=1)
    cum_neg = np.cumsum(neg, axis=1)
    n_pos, n_neg = cum_pos[:, -1].copy(), cum_neg[:, -1].copy()
    # Mann-Whitney U: each positive beats the negatives below it, and ties count one half.
    u_stat = np.einsum("ij,ij->i", pos, cum_neg) - 0.5 * np.einsum("ij,ij->i", pos, neg)
    # Rows scoring at or above each level (reusing the cumulative buffers): the precision
    # with that level as threshold. Levels without positives add nothing, so their
    # (possibly empty) denominators are raised to 1 instead of masked.
    pos_above = np.subtract(n_pos[:, None], cum_pos, out=cum_pos)
    pos_above += pos
    flagged = np.subtract(n_neg[:, None], cum_neg, out=cum_neg)
    flagged += neg
    flagged += pos_above
    np.maximum(flagged, 1.0, out=flagged)
    precision = np.divide(pos_above, flagged, out=pos_above)
    return {
        "auroc": divide(u_stat, n_pos * n_neg),
        "auprc": divide(np.einsum("ij,ij->i", pos, precision), n_pos),
    }


def _probability_metrics(
    levels: ScoreLevels, pos: FloatArray, neg: FloatArray
) -> dict[str, FloatArray]:
    values = levels.values
    n = pos.sum(axis=1) + neg.sum(axis=1)
    squared = pos * (values - 1.0) ** 2 + neg * values**2
    # Per bin, count * |mean score - fraction positive| = |sum of scores - positives|.
    residual = (pos + neg) * values - pos
    per_bin = np.add.reduceat(residual, levels.bin_starts, axis=1)
    return {
        "brier": divide(squared.sum(axis=1), n),
        "ece": divide(np.abs(per_bin).sum(axis=1), n),
    }


def metrics_from_counts(
    levels: ScoreLevels, pos: FloatArray, neg: FloatArray, threshold: float
) -> dict[str, FloatArray]:
    """Every metric of ``METRIC_NAMES`` per row of the count matrices, NaN where undefined."""
    found = _ranking_metrics(pos, neg)
    found.update(confusion_at(levels.values, pos, neg, threshold).rates())
    found.update(_probability_metrics(levels, pos, neg))
    return {name: found[name] for name in METRIC_NAMES}


def point_metrics(levels: ScoreLevels, threshold: float) -> dict[str, float | None]:
    """Every metric on the data itself, ``None`` where undefined."""
    pos, neg = levels.counts()
    found = metrics_from_counts(levels, pos, neg, threshold)
    return {name: to_optional(values[0]) for name, values in found.items()}


def to_optional(value: float | np.floating[npt.NBitBase]) -> float | None:
    """A plain float, or None for NaN."""
    number = float(value)
    return None if np.isnan(number) else number


def bootstrap_indices(n: int, n_bootstrap: int, rng: np.random.Generator) -> Iterator[IntArray]:
    """Resample indices in chunks of at most ``MAX_CELLS_PER_CHUNK`` cells, ``(B_chunk, n)``."""
    chunk = max(1, MAX_CELLS_PER_CHUNK // max(n, 1))
    done = 0
    while done < n_bootstrap:
        size = min(chunk, n_bootstrap - done)
        yield rng.integers(0, n, size=(size, n), dtype=np.int64)
        done += size


def resample_metrics(levels: ScoreLevels, idx: IntArray, threshold: float) -> dict[str, FloatArray]:
    """Every metric on each resample ``levels[idx[b]]``, NaN where undefined."""
    pos, neg = levels.resample_counts(idx)
    return metrics_from_counts(levels, pos, neg, threshold)


def bootstrap_distribution(
    levels: ScoreLevels, *, threshold: float, n_bootstrap: int, rng: np.random.Generator
) -> dict[str, FloatArray]:
    """Each metric on ``n_bootstrap`` resamples with replacement, shape ``(n_bootstrap,)``."""
    parts: dict[str, list[FloatArray]] = {name: [] for name in METRIC_NAMES}
    for idx in bootstrap_indices(levels.n, n_bootstrap, rng):
        for name, values in resample_metrics(levels, idx, threshold).items():
            parts[name].append(values)
    return {
        name: np.concatenate(chunks) if chunks else np.empty(0, dtype=np.float64)
        for name, chunks in parts.items()
    }


def percentile_interval(values: FloatArray, confidence: float) -> tuple[float | None, float | None]:
    """The percentile interval of the defined values; None when under half are defined."""
    defined = values[~np.isnan(values)]
    if values.size == 0 or 2 * defined.size < values.size:
        return None, None
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(defined, [tail, 100.0 - tail])
    return float(low), float(high)


def jackknife(levels: ScoreLevels, threshold: float) -> tuple[dict[str, FloatArray], FloatArray]:
    """Every metric with one row left out, once per distinct (score level, label), and how
    many rows each case stands for (the caller keeps the cells under
    ``JACKKNIFE_MAX_CELLS``)."""
    pos, neg = levels.counts()
    cases = [(k, 1) for k in np.flatnonzero(pos[0])] + [(k, 0) for k in np.flatnonzero(neg[0])]
    weights = np.array([pos[0, k] if label else neg[0, k] for k, label in cases])
    parts: dict[str, list[FloatArray]] = {name: [] for name in METRIC_NAMES}
    chunk = max(1, MAX_CELLS_PER_CHUNK // max(pos.shape[1], 1))
    for start in range(0, len(cases), chunk):
        part = cases[start : start + chunk]
        rows = np.arange(len(part))
        levels_left = np.array([k for k, _ in part], dtype=np.int64)
        is_pos = np.array([label == 1 for _, label in part])
        p = np.repeat(pos, len(part), axis=0)
        q = np.repeat(neg, len(part), axis=0)
        p[rows[is_pos], levels_left[is_pos]] -= 1
        q[rows[~is_pos], levels_left[~is_pos]] -= 1
        for name, values in metrics_from_counts(levels, p, q, threshold).items():
            parts[name].append(values)
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}, weights


def acceleration(values: FloatArray, weights: FloatArray) -> float:
    """BCa's acceleration from jackknife values (each standing for ``weights`` rows); 0 when
    the jackknife does not vary or a value is undefined."""
    if values.size == 0 or np.isnan(values).any():
        return 0.0
    mean = float(np.sum(weights * values) / np.sum(weights))
    spread = mean - values
    denominator = 6.0 * float(np.sum(weights * spread**2)) ** 1.5
    return float(np.sum(weights * spread**3)) / denominator if denominator > 0 else 0.0


# Metrics reported with a one-sided upper bound (see the module docstring).
UPPER_BOUND_METRICS = frozenset({"ece"})


@dataclass(frozen=True)
class Interval:
    """A bootstrap interval and how it was made (see the module docstring for methods)."""

    low: float | None
    high: float | None
    method: str | None


def upper_bound(values: FloatArray, confidence: float) -> Interval:
    """``[0, the confidence-level percentile]`` of the defined values (a one-sided bound)."""
    low, _ = percentile_interval(values, confidence)
    if low is None:
        return Interval(None, None, None)
    defined = values[~np.isnan(values)]
    return Interval(0.0, float(np.percentile(defined, 100.0 * confidence)), "upper-bound")


def bca_interval(
    values: FloatArray, estimate: float | None, accel: float | None, confidence: float
) -> Interval:
    """The BCa interval of the defined bootstrap ``values`` around ``estimate``; ``accel``
    None means no jackknife was affordable (``bc``). See the module docstring for the
    percentile fallback and the widening to the estimate."""
    low, high = percentile_interval(values, confidence)
    if low is None or high is None or estimate is None:
        return Interval(None, None, None)
    defined = values[~np.isnan(values)]
    share = (np.sum(defined < estimate) + 0.5 * np.sum(defined == estimate)) / defined.size
    method = "percentile"
    if 0.0 < share < 1.0:
        z0 = float(special.ndtri(share))
        a = accel or 0.0
        tail = float(special.ndtri((1.0 - confidence) / 2.0))
        alphas = [float(special.ndtr(z0 + (z0 + z) / (1.0 - a * (z0 + z)))) for z in (tail, -tail)]
        bounds = np.percentile(defined, [100.0 * alphas[0], 100.0 * alphas[1]])
        low, high = float(bounds[0]), float(bounds[1])
        method = "bca" if accel is not None else "bc"
    if not low <= estimate <= high:
        low, high = min(low, estimate), max(high, estimate)
        method += "-widened"
    return Interval(low, high, method)


def bca_intervals(
    levels: ScoreLevels,
    spread: dict[str, FloatArray],
    points: dict[str, float | None],
    *,
    threshold: float,
    confidence: float,
) -> dict[str, Interval]:
    """BCa intervals of every metric from its bootstrap ``spread`` and point estimate."""
    pos, neg = levels.counts()
    cases = int(np.count_nonzero(pos)) + int(np.count_nonzero(neg))
    accels: dict[str, float | None] = dict.fromkeys(METRIC_NAMES)
    if cases * levels.values.shape[0] <= JACKKNIFE_MAX_CELLS:
        values, weights = jackknife(levels, threshold)
        accels = {name: acceleration(values[name], weights) for name in METRIC_NAMES}
    return {
        name: (
            upper_bound(spread[name], confidence)
            if name in UPPER_BOUND_METRICS
            else bca_interval(spread[name], points[name], accels[name], confidence)
        )
        for name in METRIC_NAMES
    }


def curve_points(levels: ScoreLevels) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """ROC ``(fpr, tpr)`` and PR ``(recall, precision)`` at every distinct score.

    Both start at the strictest threshold: ROC at (0, 0), PR at recall 0 with precision 1, as
    ``sklearn.metrics.roc_curve`` and (reversed) ``precision_recall_curve`` give them with
    ``drop_intermediate=False``.
    """
    pos, neg = levels.counts()
    tps = np.cumsum(pos[0, ::-1])
    fps = np.cumsum(neg[0, ::-1])
    fpr = np.r_[0.0, divide(fps, np.full_like(fps, fps[-1]))]
    tpr = np.r_[0.0, divide(tps, np.full_like(tps, tps[-1]))]
    precision = np.r_[1.0, divide(tps, tps + fps)]
    return fpr, tpr, tpr.copy(), precision


def thin(x: FloatArray, y: FloatArray, max_points: int) -> tuple[list[float], list[float]]:
    """At most ``max_points`` evenly spaced points of a curve, keeping both endpoints."""
    if x.size > max_points:
        keep = np.unique(np.round(np.linspace(0, x.size - 1, max_points)).astype(np.int64))
        x, y = x[keep], y[keep]
    return [float(v) for v in x], [float(v) for v in y]
