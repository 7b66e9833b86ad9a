"""The online store: the latest value of each feature view's features per entity key, read at
prediction time.

One small interface (:class:`OnlineStore`) with three backends: SQLite (embedded mode, one
file beside the server's data), Redis (at scale, in memory) and PostgreSQL (at scale, durable,
no extra service). Each keeps, per ``(view, entity key)``, one row: the feature values, the
row's event time and its created time (the correction order). A write replaces a row only when
it is at least as new (event time, then created time), so materialization is idempotent and
may be re-run or run out of order without ever moving a value back in time.

Entity keys are the join keys' values joined by :func:`entity_key`; feature values are stored
as one JSON object per row (numbers, strings, booleans, null), so a lookup of ten features of
one entity is one read.
"""

from __future__ import annotations

from medops.features.online.base import (
    OnlineStore,
    StoredRow,
    entity_key,
    open_online_store,
)

__all__ = ["OnlineStore", "StoredRow", "entity_key", "open_online_store"]
