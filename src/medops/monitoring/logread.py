"""Reading the prediction log for monitoring: one window of one deployed version as columns.

A window is read by time (``read_window``: the rows logged in ``[start, end)``) or by count
(``read_count_window``: rows ``[index * size, (index + 1) * size)`` in log order, time then
id). Shadow rows are left out. What comes back is what ``evaluate_window`` takes: the features
as logged, the positive-class score and the outcome (None until it arrives).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import and_, case, or_, select

from medops.core.packed import FeaturePacker
from medops.core.signature import ModelSignature
from medops.db.engine import Database
from medops.monitoring.evaluate import WindowRows
from medops.serving.tables import Outcome, Prediction

# The key of a row in log order: (occurred_at, id).
LogKey = tuple[datetime, str]


@dataclass(frozen=True)
class LogSeries:
    """The logged predictions of one model version behind one deployment."""

    deployment: str
    version: int


def of(series: LogSeries) -> Sequence[Any]:
    """The WHERE clauses that select the series' rows (shadow rows left out)."""
    return (
        Prediction.deployment == series.deployment,
        Prediction.version == series.version,
        Prediction.shadow.is_(False),
    )


# What a window is read as: the packed features and score, the JSON of rows that have none
# (logged before migration 0013: selected only for them), the outcome's label and the id.
_LOGGED = select(
    Prediction.features,
    Prediction.score,
    case((Prediction.features.is_(None), Prediction.inputs)),
    case((Prediction.score.is_(None), Prediction.probabilities)),
    Outcome.label,
    Prediction.id,
).outerjoin(Outcome, Outcome.prediction_id == Prediction.id)
_ORDER = (Prediction.occurred_at, Prediction.id)


def read_window(
    db: Database, series: LogSeries, signature: ModelSignature, start: datetime, end: datetime
) -> WindowRows:
    """The series' rows logged in ``[start, end)`` as columns."""
    statement = _LOGGED.where(
        *of(series), Prediction.occurred_at >= start, Prediction.occurred_at < end
    ).order_by(*_ORDER)
    with db.session() as session:
        found = session.execute(statement).all()
    return _columns(signature, found)


def read_count_window(
    db: Database,
    series: LogSeries,
    signature: ModelSignature,
    index: int,
    size: int,
    *,
    after: LogKey | None = None,
) -> tuple[WindowRows, tuple[datetime, datetime], LogKey]:
    """Count window ``index``: log rows ``[index * size, (index + 1) * size)`` in log order
    (time, then id); the span they cover (first time, last time + 1 microsecond); the key of
    its last row. ``after`` is the key of the last row of window ``index - 1``: the rows are
    then found by key, not by counting past all before."""
    statement = _LOGGED.where(*of(series)).order_by(*_ORDER)
    if after is None:
        statement = statement.offset(index * size)
    else:
        at, key = after
        statement = statement.where(
            or_(
                Prediction.occurred_at > at,
                and_(Prediction.occurred_at == at, Prediction.id > key),
            )
        )
    with db.session() as session:
        found = session.execute(statement.limit(size)).all()
        # The times of the first and last rows only (not a million parsed timestamps).
        first_id, last_id = found[0][-1], found[-1][-1]
        times = dict(
            session.execute(
                select(Prediction.id, Prediction.occurred_at).where(
                    Prediction.id.in_({first_id, last_id})
                )
            ).all()
        )
    span = (times[first_id], times[last_id] + timedelta(microseconds=1))
    return _columns(signature, found), span, (times[last_id], last_id)


def _columns(signature: ModelSignature, found: Sequence[Any]) -> WindowRows:
    """Logged rows as columns: features as logged, positive-class score, outcome (None until
    it arrives). Packed rows unpack as one matrix; rows without (older ones) parse their JSON."""
    positive = str(signature.outputs.positive)
    outcome_of: dict[str, bool] = {}  # each distinct stored label is decoded once

    def outcome(label: str | None) -> bool | None:
        if label is None:
            return None
        known = outcome_of.get(label)
        if known is None:
            known = outcome_of[label] = str(json.loads(label)) == positive
        return known

    outcomes = [outcome(row[4]) for row in found]
    packed = [row[0] for row in found]
    if None not in packed:
        features: dict[str, Any] = FeaturePacker(signature).unpack(packed)
    else:
        features = _mixed(signature, found)
    scores = np.fromiter(
        (row[1] if row[1] is not None else _score(row[3], positive) for row in found),
        dtype=np.float64,
        count=len(found),
    )
    return WindowRows(features=features, scores=scores, outcomes=outcomes)


def _mixed(signature: ModelSignature, found: Sequence[Any]) -> dict[str, list[Any]]:
    """Columns of a window where some rows are packed and some only JSON (a window that spans
    the upgrade to migration 0013): value by value."""
    names = signature.feature_names
    features: dict[str, list[Any]] = {n: [None] * len(found) for n in names}
    packed_at = [i for i, row in enumerate(found) if row[0] is not None]
    if packed_at:
        unpacked = FeaturePacker(signature).unpack([found[i][0] for i in packed_at])
        for name in names:
            column = unpacked[name]
            values = column.tolist() if isinstance(column, np.ndarray) else column
            target = features[name]
            for i, value in zip(packed_at, values, strict=True):
                target[i] = value
    for i, row in enumerate(found):
        if row[0] is None:
            record = json.loads(row[2])
            for name in names:
                features[name][i] = record.get(name)
    return features


def _score(probabilities: str, positive: str) -> float:
    return float(json.loads(probabilities).get(positive, float("nan")))
