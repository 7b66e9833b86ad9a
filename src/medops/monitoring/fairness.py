"""Fairness of a binary classifier across demographic groups over one monitoring window.

Fairness (``fairness``): per attribute and group (groups compared by ``str(value)``), the
point value of every metric and its ratio to the reference group (given, or else the largest
group; ties go to the first name in sorted order). A ratio is judged ``"critical"`` outside
``critical`` (default [0.667, 1.5]), ``"warning"`` outside ``warn`` (default [0.8, 1.25]), else
``"ok"``; the bands apply in both directions, so a group doing much *better* is flagged too
(for Brier, lower is better). A ratio is ``None`` (not judged) when either value is undefined
or the reference value is 0. Groups under ``min_group_size`` rows are censored: only their
size is reported, no metrics, so a tiny group cannot single out patients. A censored
reference group leaves every ratio of its attribute ``None``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from medops.core.metrics import BoolArray, FloatArray, ScoreLevels, point_metrics
from medops.errors import InvalidInputError
from medops.monitoring.performance import (
    LEVEL_ORDER,
    METRICS,
    MIN_SAMPLES,
    REGISTRY_NAME,
    GroupStatus,
    Level,
    _number,
    _positive_int,
    _validate,
)


@dataclass(frozen=True)
class GroupMetric:
    """One metric of one group: its value, ratio to the reference group and level."""

    value: float | None
    ratio: float | None
    level: Level | None  # None when the ratio is undefined

    def to_dict(self) -> dict[str, float | str | None]:
        """JSON-safe form."""
        return {"value": self.value, "ratio": self.ratio, "level": self.level}


@dataclass(frozen=True)
class GroupFairness:
    """One group of one attribute; a censored group carries its size only."""

    group: str
    n: int
    status: GroupStatus
    metrics: Mapping[str, GroupMetric]  # empty when censored

    @property
    def level(self) -> Level | None:
        """The worst level over the group's metrics, None when nothing was judged."""
        return _worst(metric.level for metric in self.metrics.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "group": self.group,
            "n": self.n,
            "status": self.status,
            "level": self.level,
            "metrics": {name: metric.to_dict() for name, metric in self.metrics.items()},
        }


@dataclass(frozen=True)
class AttributeFairness:
    """Every group of one attribute, compared with ``reference_group``."""

    attribute: str
    reference_group: str
    reference_censored: bool
    groups: tuple[GroupFairness, ...]

    @property
    def level(self) -> Level | None:
        """The worst level over the attribute's groups, None when nothing was judged."""
        return _worst(group.level for group in self.groups)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "attribute": self.attribute,
            "reference_group": self.reference_group,
            "reference_censored": self.reference_censored,
            "level": self.level,
            "groups": [group.to_dict() for group in self.groups],
        }


@dataclass(frozen=True)
class FairnessResult:
    """Fairness of one window over every attribute, with the bands it was judged by."""

    threshold: float
    min_group_size: int
    warn: tuple[float, float]
    critical: tuple[float, float]
    attributes: tuple[AttributeFairness, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "threshold": self.threshold,
            "min_group_size": self.min_group_size,
            "warn": list(self.warn),
            "critical": list(self.critical),
            "attributes": [attribute.to_dict() for attribute in self.attributes],
        }


# --- window performance -------------------------------------------------------------------


def fairness(
    labels: npt.ArrayLike,
    scores: npt.ArrayLike,
    groups: Mapping[str, npt.ArrayLike],
    threshold: float,
    *,
    reference_groups: Mapping[str, str] | None = None,
    min_group_size: int = MIN_SAMPLES,
    warn: tuple[float, float] = (0.8, 1.25),
    critical: tuple[float, float] = (0.667, 1.5),
) -> FairnessResult:
    """Per-group metrics and their ratios to a reference group; see the module docstring.

    Raises ``InvalidInputError`` for malformed input, a group column of another length, a
    reference group absent from its attribute, or bands that are not nested around 1.
    """
    truth, values = _validate(labels, scores)
    threshold = _number(threshold, "threshold", 0.0, 1.0, closed=True)
    _positive_int(min_group_size, "min_group_size")
    if not critical[0] <= warn[0] <= 1.0 <= warn[1] <= critical[1]:
        raise InvalidInputError(f"bands must nest around 1: critical {critical}, warn {warn}")
    chosen = dict(reference_groups or {})
    if unknown := sorted(set(chosen) - set(groups)):
        raise InvalidInputError(f"reference_groups names unknown attributes: {unknown}")
    attributes = []
    for attribute, raw in groups.items():
        column = np.array([str(value) for value in np.asarray(raw, dtype=object).ravel()])
        if column.size != truth.size:
            raise InvalidInputError(
                f"groups[{attribute!r}] has {column.size} values but labels has {truth.size}"
            )
        attributes.append(
            _attribute_fairness(
                attribute, column, truth, values, threshold, chosen.get(attribute),
                min_group_size, warn, critical,
            )
        )  # fmt: skip
    return FairnessResult(
        threshold=threshold,
        min_group_size=min_group_size,
        warn=(float(warn[0]), float(warn[1])),
        critical=(float(critical[0]), float(critical[1])),
        attributes=tuple(attributes),
    )


def _attribute_fairness(
    attribute: str,
    column: npt.NDArray[np.str_],
    truth: BoolArray,
    values: FloatArray,
    threshold: float,
    reference: str | None,
    min_group_size: int,
    warn: tuple[float, float],
    critical: tuple[float, float],
) -> AttributeFairness:
    names, sizes = np.unique(column, return_counts=True)
    if reference is None:
        reference = str(names[int(np.argmax(sizes))]) if names.size else ""
    elif reference not in set(names.tolist()):
        raise InvalidInputError(f"reference group {reference!r} is absent from {attribute!r}")
    points: dict[str, dict[str, float | None]] = {}
    for name, size in zip(names.tolist(), sizes.tolist(), strict=True):
        if size >= min_group_size:
            mask = column == name
            found = point_metrics(ScoreLevels.build(truth[mask], values[mask], 1), threshold)
            points[name] = {metric: found[REGISTRY_NAME.get(metric, metric)] for metric in METRICS}
    base = points.get(reference, {})
    rows = []
    for name, size in zip(names.tolist(), sizes.tolist(), strict=True):
        if name not in points:
            rows.append(GroupFairness(group=name, n=size, status="censored", metrics={}))
            continue
        metrics = {}
        for metric, value in points[name].items():
            ratio = _ratio(value, base.get(metric))
            metrics[metric] = GroupMetric(value, ratio, _level(ratio, warn, critical))
        rows.append(GroupFairness(group=name, n=size, status="ok", metrics=metrics))
    return AttributeFairness(
        attribute=attribute,
        reference_group=reference,
        reference_censored=reference not in points,
        groups=tuple(rows),
    )


def _ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None or reference == 0.0:
        return None
    return value / reference


def _level(
    ratio: float | None, warn: tuple[float, float], critical: tuple[float, float]
) -> Level | None:
    if ratio is None:
        return None
    if not critical[0] <= ratio <= critical[1]:
        return "critical"
    if not warn[0] <= ratio <= warn[1]:
        return "warning"
    return "ok"


def _worst(levels: Iterable[Level | None]) -> Level | None:
    worst: Level | None = None
    for level in levels:
        if level is not None and (worst is None or LEVEL_ORDER[level] > LEVEL_ORDER[worst]):
            worst = level
    return worst


# --- validation ---------------------------------------------------------------------------
