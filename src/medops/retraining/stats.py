"""Paired comparisons of a candidate model against the champion on the same rows (pure).

* ``delong``: the difference of two correlated AUROCs (DeLong, DeLong & Clarke-Pearson 1988,
  in the fast midrank form of Sun & Xu 2014). Two-sided normal test of ``auc_a - auc_b = 0``
  with the covariance of the placement values; the interval is the normal one on the
  difference. Ties are counted one half, as the Mann-Whitney statistic counts them.
* ``mcnemar``: whether the two models' correctness at their thresholds differs, from the
  discordant pairs only (b: only A right, c: only B right). Exact two-sided binomial test when
  ``b + c < 25`` (the usual rule), else the chi-square statistic with continuity correction
  ``(|b - c| - 1)^2 / (b + c)`` on one degree of freedom (McNemar 1947, Edwards 1948).
* ``paired_bootstrap``: any other metric: resample rows with replacement (the same rows for
  both models), percentile interval of the difference; the two-sided p-value is twice the
  smaller share of resampled differences on either side of zero (at most 1).

Every function takes the labels (0/1) and both models' scores or predictions for the same
rows, in the same order, and returns a ``PairedTest``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats  # type: ignore[import-untyped]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
# Below this many discordant pairs McNemar's test is exact (binomial), above it chi-square.
EXACT_BELOW = 25


@dataclass(frozen=True)
class PairedTest:
    """One paired comparison: each model's value, their difference (A - B) with its
    interval at ``level``, and the two-sided p-value of no difference."""

    test: str
    value_a: float
    value_b: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    level: float
    statistic: float | None = None


def _labels(y: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    labels = np.asarray(y)
    if labels.ndim != 1 or not np.isin(labels, (0, 1)).all():
        msg = "labels must be a one-dimensional array of 0 and 1"
        raise ValueError(msg)
    return labels.astype(bool)


def _midranks(x: FloatArray) -> FloatArray:
    """1-based ranks with ties given their mean rank."""
    ranks: FloatArray = np.asarray(stats.rankdata(x, method="average"), dtype=np.float64)
    return ranks


def delong(
    y: npt.ArrayLike, scores_a: npt.ArrayLike, scores_b: npt.ArrayLike, *, level: float = 0.95
) -> PairedTest:
    """DeLong's test of two correlated AUROCs on the same rows."""
    labels = _labels(y)
    a = np.asarray(scores_a, dtype=np.float64)
    b = np.asarray(scores_b, dtype=np.float64)
    if a.shape != labels.shape or b.shape != labels.shape:
        msg = "labels and both score arrays must have the same length"
        raise ValueError(msg)
    m, n = int(labels.sum()), int((~labels).sum())
    if m < 2 or n < 2:
        msg = "DeLong's test needs at least two positive and two negative rows"
        raise ValueError(msg)
    aucs = []
    v10s = []
    v01s = []
    for s in (a, b):
        pos, neg = s[labels], s[~labels]
        tx, ty, tz = _midranks(pos), _midranks(neg), _midranks(np.concatenate([pos, neg]))
        auc = (tz[:m].sum() - m * (m + 1) / 2) / (m * n)
        aucs.append(auc)
        # Placement values: share of negatives below each positive, of positives above each
        # negative (ties one half).
        v10s.append((tz[:m] - tx) / n)
        v01s.append(1.0 - (tz[m:] - ty) / m)
    s10 = np.cov(np.vstack(v10s))
    s01 = np.cov(np.vstack(v01s))
    cov = s10 / m + s01 / n
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    diff = float(aucs[0] - aucs[1])
    z_crit = float(stats.norm.ppf(0.5 + level / 2))
    if var <= 0.0:
        # Identical rankings: no variance of the difference; no evidence of one.
        p = 1.0 if diff == 0.0 else 0.0
        return PairedTest("delong", aucs[0], aucs[1], diff, diff, diff, p, level, None)
    se = math.sqrt(var)
    z = diff / se
    p = float(2 * stats.norm.sf(abs(z)))
    return PairedTest(
        "delong",
        float(aucs[0]),
        float(aucs[1]),
        diff,
        diff - z_crit * se,
        diff + z_crit * se,
        p,
        level,
        float(z),
    )


def mcnemar(
    y: npt.ArrayLike, predicted_a: npt.ArrayLike, predicted_b: npt.ArrayLike, *, level: float = 0.95
) -> PairedTest:
    """McNemar's test of paired accuracy; the interval is Wald's for the difference of
    paired proportions, ``(b - c) / n``."""
    labels = _labels(y)
    right_a = np.asarray(predicted_a).astype(bool) == labels
    right_b = np.asarray(predicted_b).astype(bool) == labels
    n = labels.size
    if n == 0:
        msg = "McNemar's test needs rows"
        raise ValueError(msg)
    b = int((right_a & ~right_b).sum())
    c = int((~right_a & right_b).sum())
    acc_a, acc_b = float(right_a.mean()), float(right_b.mean())
    diff = (b - c) / n
    if b + c == 0:
        p, statistic = 1.0, 0.0
    elif b + c < EXACT_BELOW:
        p = float(stats.binomtest(b, b + c, 0.5).pvalue)
        statistic = float(min(b, c))
    else:
        statistic = (abs(b - c) - 1) ** 2 / (b + c)
        p = float(stats.chi2.sf(statistic, 1))
    se = math.sqrt(max(0.0, (b + c) / n - diff**2) / n)
    z_crit = float(stats.norm.ppf(0.5 + level / 2))
    return PairedTest(
        "mcnemar", acc_a, acc_b, diff, diff - z_crit * se, diff + z_crit * se, p, level, statistic
    )


Metric = Callable[[npt.NDArray[np.bool_], FloatArray], float]


def paired_bootstrap(
    y: npt.ArrayLike,
    scores_a: npt.ArrayLike,
    scores_b: npt.ArrayLike,
    metric: Metric,
    *,
    metric_b: Metric | None = None,
    name: str = "bootstrap",
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> PairedTest:
    """The difference ``metric(a) - metric(b)`` with a percentile interval from resampling
    rows (the same rows for both models); resamples where the metric is undefined (NaN, say
    one class only) are dropped. ``metric_b``, when given, judges B (say, at its own
    threshold)."""
    labels = _labels(y)
    a = np.asarray(scores_a, dtype=np.float64)
    b = np.asarray(scores_b, dtype=np.float64)
    judge_b = metric if metric_b is None else metric_b
    value_a, value_b = metric(labels, a), judge_b(labels, b)
    rng = np.random.default_rng(seed)
    n = labels.size
    diffs = np.empty(n_resamples)
    for i in range(n_resamples):
        idx = rng.integers(0, n, n)
        diffs[i] = metric(labels[idx], a[idx]) - judge_b(labels[idx], b[idx])
    diffs = diffs[np.isfinite(diffs)]
    diff = float(value_a - value_b)
    if diffs.size == 0:
        return PairedTest(name, value_a, value_b, diff, math.nan, math.nan, math.nan, level)
    alpha = (1 - level) / 2
    low, high = np.quantile(diffs, [alpha, 1 - alpha])
    share = min(float((diffs <= 0).mean()), float((diffs >= 0).mean()))
    return PairedTest(
        name, value_a, value_b, diff, float(low), float(high), min(1.0, 2 * share), level
    )


def brier(labels: npt.NDArray[np.bool_], scores: FloatArray) -> float:
    """Mean squared difference of the score and the outcome."""
    return float(np.mean((scores - labels) ** 2)) if labels.size else math.nan


def sensitivity_at(threshold: float) -> Metric:
    """Share of positives scored at or above ``threshold``."""

    def metric(labels: npt.NDArray[np.bool_], scores: FloatArray) -> float:
        positives = int(labels.sum())
        return float((scores[labels] >= threshold).sum() / positives) if positives else math.nan

    return metric


def specificity_at(threshold: float) -> Metric:
    """Share of negatives scored below ``threshold``."""

    def metric(labels: npt.NDArray[np.bool_], scores: FloatArray) -> float:
        negatives = int((~labels).sum())
        return float((scores[~labels] < threshold).sum() / negatives) if negatives else math.nan

    return metric


def auroc(labels: npt.NDArray[np.bool_], scores: FloatArray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties one half); NaN with one class only."""
    m = int(labels.sum())
    n = labels.size - m
    if m == 0 or n == 0:
        return math.nan
    ranks = _midranks(scores)
    return float((ranks[labels].sum() - m * (m + 1) / 2) / (m * n))
