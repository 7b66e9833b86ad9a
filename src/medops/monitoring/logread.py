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

from sqlalchemy import and_, or_, select

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


_LOGGED = select(
    Prediction.inputs,
    Prediction.probabilities,
    Outcome.label,
    Prediction.occurred_at,
    Prediction.id,
).outerjoin(Outcome, Outcome.prediction_id == Prediction.id)


def read_window(
    db: Database, series: LogSeries, signature: ModelSignature, start: datetime, end: datetime
) -> WindowRows:
    """The series' rows logged in ``[start, end)`` as columns."""
    with db.session() as session:
        found = session.execute(
            _LOGGED.where(
                *of(series), Prediction.occurred_at >= start, Prediction.occurred_at < end
            ).order_by(Prediction.occurred_at, Prediction.id)
        ).all()
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
    statement = _LOGGED.where(*of(series)).order_by(Prediction.occurred_at, Prediction.id)
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
    first, last = found[0], found[-1]
    span = (first[3], last[3] + timedelta(microseconds=1))
    return _columns(signature, found), span, (last[3], last[4])


def _columns(signature: ModelSignature, found: Sequence[Any]) -> WindowRows:
    """Logged rows as columns: features as logged, positive-class score, outcome (None until
    it arrives)."""
    positive = str(signature.outputs.positive)
    names = signature.feature_names
    features: dict[str, list[Any]] = {n: [] for n in names}
    scores: list[float] = []
    outcomes: list[bool | None] = []
    for inputs, probabilities, label, _at, _id in found:
        record = json.loads(inputs)
        for name in names:
            features[name].append(record.get(name))
        scores.append(float(json.loads(probabilities).get(positive, float("nan"))))
        outcomes.append(None if label is None else str(json.loads(label)) == positive)
    return WindowRows(features=features, scores=scores, outcomes=outcomes)
