"""Materialization: the latest row of each entity of a feature view, from its source into the
online store, incrementally.

A run reads the view's source rows whose *arrival* time (the created-time column when the view
declares one, else the event time) is at or after the view's watermark, keeps per entity key
the newest row (greatest event time, then created time, then the later source row: the same
order the offline join uses), and upserts those into the online store, whose own newer-wins
rule ignores a row older than the one it holds. The watermark then moves to the greatest
arrival time read. Reading from the watermark itself (``>=``, not ``>``) re-writes the rows at
the edge, which the store's rule makes harmless, so a row arriving with the same created time
as the last run's newest is never skipped.

A view without a created-time column can only be followed by event time: a row arriving late
with an old event time is not read by the next incremental run (it would not change the latest
value of an entity that has a newer one anyway, but it can for an entity seen for the first
time). Declare a created-time column for sources with late rows, or run with ``full``.

The source is read with the offline store's reader (``features.offline.read_source``): the same
files, PostgreSQL tables and dataset versions, the same time handling (UTC).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl

from medops.features.offline import DatasetFiles, read_source, utc
from medops.features.online.base import OnlineStore, StoredRow, entity_key
from medops.features.schemas import FeatureRepo, FeatureView

_TS = "__medops_event"
_CREATED = "__medops_created"
_ORDER = "__medops_order"


@dataclass(frozen=True)
class Materialized:
    """What one run of one view did."""

    rows_read: int
    rows_written: int
    entities: int
    watermark: datetime | None
    seconds: float


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def latest_per_entity(
    repo: FeatureRepo, view: FeatureView, frame: pl.DataFrame
) -> tuple[pl.DataFrame, list[str]]:
    """One row per entity key, the newest (event time, created time, source order), with the
    key columns, ``__medops_event``, ``__medops_created`` and the features."""
    keys = [k.name for k in repo.view_keys(view)]
    event = utc(pl.col(view.event_time), frame.schema[view.event_time])
    created = (
        utc(pl.col(view.created_time), frame.schema[view.created_time])
        if view.created_time
        else event
    )
    out = frame.with_row_index(_ORDER).select(
        *keys,
        event.alias(_TS),
        created.alias(_CREATED),
        *(f.name for f in view.features),
        _ORDER,
    )
    out = out.filter(pl.col(_TS).is_not_null())
    out = out.sort([_TS, _CREATED, _ORDER], nulls_last=False, maintain_order=True)
    out = out.unique(subset=keys, keep="last", maintain_order=True).drop(_ORDER)
    return out, keys


def rows_of(view: FeatureView, frame: pl.DataFrame, keys: Sequence[str]) -> list[StoredRow]:
    """The frame's rows as online-store rows (values as JSON-able Python values)."""
    names = [f.name for f in view.features]
    out: list[StoredRow] = []
    for record in frame.iter_rows(named=True):
        values: dict[str, Any] = {}
        for name in names:
            value = record[name]
            if isinstance(value, float) and value != value:  # NaN: missing  # noqa: PLR0124
                value = None
            elif isinstance(value, datetime):
                value = _aware(value).isoformat()
            values[name] = value
        created = record[_CREATED] if record[_CREATED] is not None else record[_TS]
        out.append(
            StoredRow(
                entity_key([record[k] for k in keys]),
                values,
                _aware(record[_TS]),
                _aware(created),
            )
        )
    return out


def materialize_view(
    repo: FeatureRepo,
    view: FeatureView,
    store: OnlineStore,
    watermark: datetime | None,
    now: datetime,
    *,
    datasets: DatasetFiles | None = None,
) -> Materialized:
    """Write the newest row per entity of ``view`` arrived at or after ``watermark`` (all rows
    when None) and valid by ``now`` (event time at or before it) to ``store``; returns the
    counts and the new watermark. A row dated after ``now`` is left for a later run: the
    watermark stops at its arrival time so that run reads it again."""
    started = time.perf_counter()
    keys = [k.name for k in repo.view_keys(view)]
    columns = [*keys, view.event_time]
    if view.created_time:
        columns.append(view.created_time)
    columns += [f.name for f in view.features if f.name not in columns]
    frame = read_source(view, columns, datasets)
    arrival_column = view.created_time or view.event_time
    arrival = utc(pl.col(arrival_column), frame.schema[arrival_column])
    if watermark is not None:
        naive = _aware(watermark).replace(tzinfo=None)
        frame = frame.filter(arrival >= pl.lit(naive, dtype=pl.Datetime("us")))
    rows_read = frame.height
    newest_arrival = frame.select(arrival.max()).item() if rows_read else None
    event = utc(pl.col(view.event_time), frame.schema[view.event_time])
    cutoff = pl.lit(_aware(now).replace(tzinfo=None), dtype=pl.Datetime("us"))
    future = frame.filter(event > cutoff)
    if future.height:
        first_future = future.select(arrival.min()).item()
        if first_future is not None and (newest_arrival is None or first_future < newest_arrival):
            newest_arrival = first_future
        frame = frame.filter(event <= cutoff)
    latest, keys = latest_per_entity(repo, view, frame)
    written = store.write(view.name, rows_of(view, latest, keys))
    after = _aware(newest_arrival) if newest_arrival is not None else watermark
    return Materialized(
        rows_read=rows_read,
        rows_written=written,
        entities=latest.height,
        watermark=after,
        seconds=time.perf_counter() - started,
    )
