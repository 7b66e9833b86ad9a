"""The validation report of a binary classifier: metrics with bootstrap CIs, by subgroup.

``compute_report`` is pure computation (no database, no HTTP): labels and scores in, a
JSON-serializable dict out (plain ``float``/``int``/``str``/``bool``/``None``/``list``/
``dict``, never NaN). Metric definitions, the handling of undefined values (``None``, never 0)
and the bootstrap are described in ``medops.core.metrics``.

Subgroups: each attribute's groups are reported in sorted order. A group with fewer rows than
``min_group_size`` is censored: its size and prevalence are reported, its metrics are not.
Subgroup intervals resample within the subgroup, with a generator seeded from ``seed`` and the
attribute and group names, so a group's interval does not depend on which other attributes
were evaluated. The overall intervals use ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from medops.core.metrics import (
    METRIC_NAMES,
    THRESHOLD_METRIC_NAMES,
    BoolArray,
    FloatArray,
    ScoreLevels,
    bca_intervals,
    bootstrap_distribution,
    calibration_bin,
    confusion_at,
    curve_points,
    point_metrics,
    thin,
    to_optional,
)
from medops.errors import FieldError, InvalidInputError

SCHEMA = "medops.validation-report/1"
MAX_BOOTSTRAP = 100_000
MAX_BINS = 100
MAX_ATTRIBUTES = 50
MAX_GROUPS_PER_ATTRIBUTE = 200
MAX_CURVE_POINTS = 200
TABLE_THRESHOLDS: tuple[float, ...] = tuple(round(k * 0.05, 2) for k in range(1, 20))


def _fail(field: str, reason: str) -> InvalidInputError:
    return InvalidInputError(f"invalid {field}: {reason}", errors=[FieldError(field, reason)])


def _as_vector(values: object, field: str) -> np.ndarray[Any, Any]:
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise _fail(field, "must be a one-dimensional array of numbers") from exc
    if array.ndim != 1 or array.dtype.kind not in "biuf":
        raise _fail(field, "must be a one-dimensional array of numbers")
    if array.size == 0:
        raise _fail(field, "must not be empty")
    return array


def _validate_labels(y_true: object) -> BoolArray:
    array = _as_vector(y_true, "labels")
    if not bool(np.all((array == 0) | (array == 1))):
        raise _fail("labels", "every label must be 0 or 1")
    labels: BoolArray = array == 1
    if labels.all() or not labels.any():
        raise _fail("labels", "both classes (0 and 1) must be present; AUROC is undefined")
    return labels


def _validate_scores(scores: object, n: int) -> FloatArray:
    array = _as_vector(scores, "scores").astype(np.float64)
    if not bool(np.all(np.isfinite(array))):
        raise _fail("scores", "every score must be a finite number (no NaN or infinity)")
    if bool(np.any((array < 0.0) | (array > 1.0))):
        raise _fail("scores", "every score must be a probability in [0, 1]")
    if array.size != n:
        raise _fail("scores", f"has {array.size} values but labels has {n}")
    return array


def _validate_number(value: object, field: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(field, "must be a finite number")
    if not low < value < high:
        raise _fail(field, f"must be strictly between {low:g} and {high:g}")
    return float(value)


def _validate_count(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise _fail(field, "must be an integer")
    if not low <= value <= high:
        raise _fail(field, f"must be between {low} and {high}")
    return int(value)


def _validate_groups(
    groups: Mapping[str, Sequence[str]] | None, n: int
) -> dict[str, np.ndarray[Any, Any]]:
    if groups is None:
        return {}
    if len(groups) > MAX_ATTRIBUTES:
        raise _fail("groups", f"at most {MAX_ATTRIBUTES} attributes")
    found: dict[str, np.ndarray[Any, Any]] = {}
    for attribute, labels in groups.items():
        field = f"groups.{attribute}"
        if not isinstance(attribute, str) or not attribute:
            raise _fail("groups", "attribute names must be non-empty strings")
        if isinstance(labels, str | bytes):
            raise _fail(field, "must be a sequence of group labels, not one string")
        column = np.empty(len(labels), dtype=object)
        column[:] = list(labels)
        if column.size != n:
            raise _fail(field, f"has {column.size} values but labels has {n}")
        if not all(isinstance(label, str) for label in column):
            raise _fail(field, "every group label must be a string")
        if len(set(column)) > MAX_GROUPS_PER_ATTRIBUTE:
            raise _fail(field, f"at most {MAX_GROUPS_PER_ATTRIBUTE} distinct groups")
        found[attribute] = column
    return found


def _subgroup_rng(seed: int, attribute: str, group: str) -> np.random.Generator:
    key = (zlib.crc32(attribute.encode()), zlib.crc32(group.encode()))
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _metric_block(
    levels: ScoreLevels,
    *,
    threshold: float,
    n_bootstrap: int,
    rng: np.random.Generator,
    confidence: float,
) -> dict[str, dict[str, Any]]:
    points = point_metrics(levels, threshold)
    spread = bootstrap_distribution(levels, threshold=threshold, n_bootstrap=n_bootstrap, rng=rng)
    intervals = bca_intervals(levels, spread, points, threshold=threshold, confidence=confidence)
    block: dict[str, dict[str, Any]] = {}
    for name in METRIC_NAMES:
        value, interval = points[name], intervals[name]
        defined = value is not None and interval.low is not None
        block[name] = {
            "value": value,
            "ci_low": interval.low if defined else None,
            "ci_high": interval.high if defined else None,
            "ci_method": interval.method if defined else None,
        }
    return block


def _calibration(labels: BoolArray, scores: FloatArray, n_bins: int) -> dict[str, Any]:
    bins = calibration_bin(scores, n_bins)
    counts = np.bincount(bins, minlength=n_bins)
    sum_scores = np.bincount(bins, weights=scores, minlength=n_bins)
    sum_labels = np.bincount(bins, weights=labels.astype(np.float64), minlength=n_bins)
    rows: list[dict[str, Any]] = []
    for j in range(n_bins):
        count = int(counts[j])
        rows.append(
            {
                "lower": j / n_bins,
                "upper": (j + 1) / n_bins,
                "count": count,
                "mean_predicted": float(sum_scores[j] / count) if count else None,
                "fraction_positive": float(sum_labels[j] / count) if count else None,
            }
        )
    return {"n_bins": n_bins, "bins": rows}


def _threshold_table(levels: ScoreLevels) -> list[dict[str, float | None]]:
    pos, neg = levels.counts()
    rows: list[dict[str, float | None]] = []
    for threshold in TABLE_THRESHOLDS:
        confusion = confusion_at(levels.values, pos, neg, threshold)
        rates = confusion.rates()
        row: dict[str, float | None] = {"threshold": threshold}
        row.update({name: to_optional(rates[name][0]) for name in THRESHOLD_METRIC_NAMES})
        row["flagged_fraction"] = float((confusion.tp[0] + confusion.fp[0]) / levels.n)
        rows.append(row)
    return rows


def _curves(levels: ScoreLevels) -> dict[str, dict[str, list[float]]]:
    fpr, tpr, recall, precision = curve_points(levels)
    roc_x, roc_y = thin(fpr, tpr, MAX_CURVE_POINTS)
    pr_x, pr_y = thin(recall, precision, MAX_CURVE_POINTS)
    return {
        "roc_curve": {"fpr": roc_x, "tpr": roc_y},
        "pr_curve": {"recall": pr_x, "precision": pr_y},
    }


def _subgroup(
    attribute: str,
    group: str,
    labels: BoolArray,
    scores: FloatArray,
    overall: dict[str, dict[str, Any]],
    options: dict[str, Any],
) -> dict[str, Any]:
    n = int(labels.size)
    positives = int(labels.sum())
    entry: dict[str, Any] = {
        "attribute": attribute,
        "group": group,
        "n": n,
        "positives": positives,
        "prevalence": positives / n,
        "censored": n < options["min_group_size"],
        "reason": f"n < {options['min_group_size']}" if n < options["min_group_size"] else None,
        "metrics": {},
    }
    if entry["censored"]:
        return entry
    levels = ScoreLevels.build(labels, scores, options["n_bins"])
    block = _metric_block(
        levels,
        threshold=options["threshold"],
        n_bootstrap=options["n_bootstrap"],
        rng=_subgroup_rng(options["seed"], attribute, group),
        confidence=options["confidence"],
    )
    for name, stats in block.items():
        value, reference = stats["value"], overall[name]["value"]
        stats["gap"] = None if value is None or reference is None else value - reference
    entry["metrics"] = block
    return entry


def compute_report(
    *,
    y_true: np.ndarray[Any, Any],
    scores: np.ndarray[Any, Any],
    groups: Mapping[str, Sequence[str]] | None = None,
    threshold: float = 0.5,
    n_bootstrap: int = 1000,
    seed: int = 0,
    n_bins: int = 10,
    min_group_size: int = 20,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """The validation report of scores against binary labels; see the module docstring.

    Raises ``InvalidInputError`` naming the offending field for malformed input.
    """
    labels = _validate_labels(y_true)
    values = _validate_scores(scores, labels.size)
    options: dict[str, Any] = {
        "threshold": _validate_number(threshold, "threshold", 0.0, 1.0),
        "n_bootstrap": _validate_count(n_bootstrap, "n_bootstrap", 0, MAX_BOOTSTRAP),
        "seed": _validate_count(seed, "seed", 0, 2**63 - 1),
        "n_bins": _validate_count(n_bins, "n_bins", 1, MAX_BINS),
        "min_group_size": _validate_count(min_group_size, "min_group_size", 1, 2**31),
        "confidence": _validate_number(confidence, "confidence", 0.0, 1.0),
    }
    columns = _validate_groups(groups, labels.size)
    levels = ScoreLevels.build(labels, values, options["n_bins"])
    overall = _metric_block(
        levels,
        threshold=options["threshold"],
        n_bootstrap=options["n_bootstrap"],
        rng=np.random.default_rng(options["seed"]),
        confidence=options["confidence"],
    )
    confusion = confusion_at(levels.values, *levels.counts(), options["threshold"])
    subgroups = [
        _subgroup(attribute, str(group), labels[mask], values[mask], overall, options)
        for attribute, column in columns.items()
        for group in sorted(set(column))
        for mask in [column == group]
    ]
    calibration = _calibration(labels, values, options["n_bins"])
    positives = int(labels.sum())
    return {
        "schema": SCHEMA,
        "n": int(labels.size),
        "positives": positives,
        "prevalence": positives / labels.size,
        "threshold": options["threshold"],
        "metrics": overall,
        "confusion": {
            "tp": int(confusion.tp[0]),
            "fp": int(confusion.fp[0]),
            "tn": int(confusion.tn[0]),
            "fn": int(confusion.fn[0]),
        },
        "calibration": {"ece": overall["ece"]["value"], **calibration},
        **_curves(levels),
        "thresholds": _threshold_table(levels),
        "subgroups": subgroups,
        "bootstrap": {
            "n": options["n_bootstrap"],
            "seed": options["seed"],
            "confidence": options["confidence"],
            "method": "bca",
        },
    }
