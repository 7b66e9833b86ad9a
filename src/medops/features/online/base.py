"""The online store's interface, its row, and the URL that picks a backend."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from medops.errors import InvalidInputError

KEY_SEPARATOR = "\x1f"  # the ASCII unit separator: never typed into an identifier


def entity_key(values: Sequence[object]) -> str:
    """One entity's key in the online store: its join keys' values in the entity's order."""
    return KEY_SEPARATOR.join(str(v) for v in values)


def to_micros(moment: datetime) -> int:
    """A timezone-aware datetime as integer microseconds since the epoch (UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    """The inverse of :func:`to_micros` (UTC)."""
    seconds, rest = divmod(micros, 1_000_000)
    return datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=rest)


@dataclass(frozen=True, slots=True)
class StoredRow:
    """The latest values of one view for one entity, with the row's event and created time
    (``created`` orders corrections of the same event time; equal to ``event`` when the view
    declares no created-time column)."""

    key: str
    values: Mapping[str, Any]
    event: datetime
    created: datetime

    def encode(self) -> str:
        return json.dumps(dict(self.values), separators=(",", ":"), sort_keys=True)


def decode_values(text: str | bytes) -> dict[str, Any]:
    values: dict[str, Any] = json.loads(text)
    return values


class OnlineStore(Protocol):
    """Where materialization writes and serving reads the latest feature values."""

    url: str

    def write(self, view: str, rows: Iterable[StoredRow]) -> int:
        """Upsert ``rows`` of ``view``; a row older (event, created) than the stored one is
        ignored, and so is one equal to it in times and values (a re-read). At equal times
        different values replace the stored ones (the later source row wins a full tie).
        Returns the rows written (new or changed)."""
        ...

    def read(self, view: str, keys: Sequence[str]) -> list[StoredRow | None]:
        """The stored rows of ``view`` for ``keys``, in order (``None`` where absent)."""
        ...

    def delete_view(self, view: str) -> int:
        """Remove every row of ``view``; returns how many were removed."""
        ...

    def count(self, view: str) -> int:
        """How many entities ``view`` holds."""
        ...

    def close(self) -> None: ...


def open_online_store(url: str, *, namespace: str = "medops") -> OnlineStore:
    """The store a URL names: ``sqlite:///path``, ``redis://host:port/db`` or
    ``postgresql://...`` (``namespace`` prefixes Redis keys and names the PostgreSQL table)."""
    if url.startswith("sqlite:///"):
        from medops.features.online.sqlite import SqliteOnlineStore

        return SqliteOnlineStore(url)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from medops.features.online.redis import RedisOnlineStore

        return RedisOnlineStore(url, namespace=namespace)
    if url.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
        from medops.features.online.postgres import PostgresOnlineStore

        return PostgresOnlineStore(url, table=f"{namespace}_feature_online")
    raise InvalidInputError(
        "the online store URL must start with sqlite:///, redis:// or postgresql://"
    )


def newest_per_key(rows: Iterable[StoredRow]) -> list[StoredRow]:
    """One row per key, the newest by (event, created); a later row wins a full tie (the
    source's row order: the latest correction)."""
    newest: dict[str, StoredRow] = {}
    for row in rows:
        held = newest.get(row.key)
        if held is None or (row.event, row.created) >= (held.event, held.created):
            newest[row.key] = row
    return list(newest.values())
