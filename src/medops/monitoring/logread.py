"""Reading the prediction log for monitoring: one window of one deployed version as columns.

A window is read by time (``read_window``: the rows logged in ``[start, end)``) or by count
(``read_count_window``: rows ``[index * size, (index + 1) * size)`` in log order, time then
id). Shadow rows are left out. What comes back is what ``evaluate_window`` takes: the features
as logged, the positive-class score and the outcome (None until it arrives).
"""

from __future__ import annotations

import contextlib
import gc
import json
import operator
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection, Select, and_, false, func, or_, select

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
        Prediction.shadow == false(),  # (an equality: the series index can take it)
    )


# What a window is read as: each row's packed features and score and its outcome's label
# (Core columns of the tables: no ORM entity loading). A window holding rows without them
# (logged before migration 0013, or a record that could not be packed) is read again with
# the rows' JSON too (``_FULL``), and built value by value.
_P = Prediction.__table__.c
_O = Outcome.__table__.c
_JOINED = Prediction.__table__.outerjoin(Outcome.__table__, _O.prediction_id == _P.id)
_ORDER = (_P.occurred_at, _P.id)
_LEAN = select(_P.features, _P.score, _O.label).select_from(_JOINED).order_by(*_ORDER)
_FULL = _LEAN.add_columns(_P.inputs, _P.probabilities)
_KEYS = select(Prediction.occurred_at, Prediction.id).order_by(*_ORDER)  # from the index alone
_FEATURES, _SCORE, _LABEL = (operator.itemgetter(i) for i in range(3))
CHUNK = 65_536  # rows taken from the driver at a time (memory stays at one chunk of objects)


def read_window(
    db: Database, series: LogSeries, signature: ModelSignature, start: datetime, end: datetime
) -> WindowRows:
    """The series' rows logged in ``[start, end)`` as columns."""
    where = [*of(series), _P.occurred_at >= start, _P.occurred_at < end]
    with _snapshot(db) as connection:
        rows = connection.execute(select(func.count()).where(*where)).scalar_one()
        return _read(connection, lambda s: s.where(*where), signature, rows)


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
    where = list(of(series))
    skip = index * size
    if after is not None:
        at, key = after
        where.append(or_(Prediction.occurred_at > at, and_(Prediction.occurred_at == at,
                                                           Prediction.id > key)))  # fmt: skip
        skip = 0
    with _snapshot(db) as connection:
        window = _read(
            connection, lambda s: s.where(*where).offset(skip).limit(size), signature, size
        )
        # The keys of the first and last rows, from the index (not a million parsed times).
        keys = _KEYS.where(*where).limit(1)
        first = connection.execute(keys.offset(skip)).one()
        last = connection.execute(keys.offset(skip + window.rows - 1)).one()
    span = (first[0], last[0] + timedelta(microseconds=1))
    return window, span, (last[0], last[1])


@contextlib.contextmanager
def _snapshot(db: Database) -> Iterator[Connection]:
    """A connection whose queries all see one snapshot of the log (on PostgreSQL a repeatable
    read transaction; SQLite's read transaction is one), so a window's rows and its keys
    agree while predictions keep arriving."""
    with db.engine.connect() as connection:
        if db.dialect == "postgresql":
            connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            yield connection


def _read(
    connection: Connection,
    narrow: Callable[[Select[Any]], Select[Any]],
    signature: ModelSignature,
    at_most: int,
) -> WindowRows:
    """The window that ``narrow`` selects (``at_most`` rows), built chunk by chunk from the
    driver's own rows (no per-row result processing: the columns read are bytes, floats and
    text as stored)."""
    with _no_collection():
        reader = _Columns(signature, at_most)
        cursor = connection.execute(narrow(_LEAN)).cursor
        while rows := cursor.fetchmany(CHUNK):
            if not reader.add(rows):
                cursor.close()
                break
        else:
            return reader.window()
        # A row without packed features or score: the whole window again, with the JSON.
        reader = _Columns(signature, at_most)
        cursor = connection.execute(narrow(_FULL)).cursor
        while rows := cursor.fetchmany(CHUNK):
            reader.add_by_value(rows)
        return reader.window()


@contextlib.contextmanager
def _no_collection() -> Iterator[None]:
    """The cyclic garbage collector paused while a window is read: the driver makes millions
    of short-lived row tuples (no cycles among them), and every few hundred of them would
    start a collection that walks the objects alive, the chunk read so far included."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Columns:
    """A window's columns, built from chunks of rows: packed rows as float64 matrices (one
    per chunk, feature by feature), or value by value when some rows have only JSON (a window
    that spans migration 0013)."""

    def __init__(self, signature: ModelSignature, at_most: int) -> None:
        self._packer = FeaturePacker(signature)
        self._capacity = at_most
        self._filled = 0
        self._matrix: np.ndarray[Any, Any] | None = None  # feature by feature, made on use
        self._positive = str(signature.outputs.positive)
        self._outcome_of: dict[str, bool] = {}  # each distinct stored label decoded once
        self._scores: list[np.ndarray[Any, Any]] = []
        self._outcomes: list[bool | None] = []
        self._listed: dict[str, list[Any]] | None = None  # once a row had no packed features

    def add(self, rows: Sequence[Any]) -> bool:
        """Take a chunk of ``(features, score, label)`` rows; False (nothing taken) when one
        of them has no packed features or no score."""
        packed = list(map(_FEATURES, rows))
        scores = list(map(_SCORE, rows))
        if None in packed or None in scores:
            return False
        labels = list(map(_LABEL, rows))
        if labels.count(None) == len(labels):  # no outcome yet: the usual recent window
            self._outcomes.extend(labels)
        else:
            self._outcomes.extend([self._outcome(label) for label in labels])
        self._scores.append(np.asarray(scores, dtype=np.float64))
        matrix = np.frombuffer(b"".join(packed), dtype="<f8").reshape(len(rows), -1)
        if self._matrix is None:  # the whole window's features, one row per feature
            self._matrix = np.empty((self._packer.width, self._capacity))
        start, self._filled = self._filled, self._filled + len(rows)
        self._matrix[:, start : self._filled] = matrix.T
        return True

    def add_by_value(self, rows: Sequence[Any]) -> None:
        """Take a chunk of ``(features, score, label, inputs, probabilities)`` rows, value by
        value: packed features where a row has them, else its JSON."""
        if self._listed is None:
            self._listed = {name: [] for name in self._packer.names}
        listed = self._listed
        names = self._packer.names
        packed_at = [i for i, row in enumerate(rows) if row[0] is not None]
        # The chunk's packed rows unpack in one call (a window spanning the upgrade can hold
        # a million of them), the others parse their JSON.
        unpacked = self._packer.unpack([rows[i][0] for i in packed_at]) if packed_at else {}
        by_row = {
            name: dict(zip(packed_at, _values(unpacked[name]), strict=True))
            for name in (names if packed_at else [])
        }
        for i, row in enumerate(rows):
            if row[0] is not None:
                for name in names:
                    listed[name].append(by_row[name][i])
            else:
                record = json.loads(row[3])
                for name in names:
                    listed[name].append(record.get(name))
        self._outcomes.extend([self._outcome(row[2]) for row in rows])
        self._scores.append(
            np.asarray(
                [row[1] if row[1] is not None else self._score(row[4]) for row in rows],
                dtype=np.float64,
            )
        )

    def window(self) -> WindowRows:
        scores = np.concatenate(self._scores) if self._scores else np.empty(0)
        if self._listed is not None:
            features: dict[str, Any] = self._listed
        elif self._matrix is None:
            features = {name: [] for name in self._packer.names}
        else:
            features = self._packer.columns(self._matrix[:, : self._filled])
        return WindowRows(features=features, scores=scores, outcomes=self._outcomes)

    def _outcome(self, label: str | None) -> bool | None:
        if label is None:
            return None
        known = self._outcome_of.get(label)
        if known is None:
            known = self._outcome_of[label] = str(json.loads(label)) == self._positive
        return known

    def _score(self, probabilities: str) -> float:
        return float(json.loads(probabilities).get(self._positive, float("nan")))


def _values(column: Any) -> list[Any]:
    """A column as plain Python values (arrays through ``tolist``)."""
    return column.tolist() if isinstance(column, np.ndarray) else list(column)
