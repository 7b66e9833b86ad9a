"""The online store in PostgreSQL: one table (created when missing), one row per
(view, entity key); a batch is written with one ``INSERT ... SELECT FROM unnest(...)`` whose
``ON CONFLICT`` clause keeps the newer row (event time, then created time)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence

import psycopg
from sqlalchemy.engine import make_url

from medops.errors import InvalidInputError
from medops.features.online.base import (
    StoredRow,
    from_micros,
    newest_per_key,
    to_micros,
)

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_BATCH = 5000


class PostgresOnlineStore:
    """The online store in a PostgreSQL table (``postgresql://...``)."""

    def __init__(self, url: str, *, table: str = "medops_feature_online") -> None:
        if not _NAME.match(table):
            raise InvalidInputError(f"invalid online store table name {table!r}")
        self.url = url
        self.table = table
        self._conninfo = (
            make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        )
        self._local = threading.local()
        self._opened: list[psycopg.Connection[tuple[object, ...]]] = []
        self._lock = threading.Lock()
        t = self.table
        self._upsert = (
            f"INSERT INTO {t} (view, key, vals, event_us, created_us) "  # noqa: S608  # nosec B608 - the table name is checked against _NAME; values are parameters
            "SELECT %s, k, v::jsonb, e, c FROM unnest(%s::text[], %s::text[], %s::bigint[], "
            "%s::bigint[]) AS u(k, v, e, c) "
            "ON CONFLICT (view, key) DO UPDATE SET vals = excluded.vals, "
            "event_us = excluded.event_us, created_us = excluded.created_us "
            f"WHERE excluded.event_us > {t}.event_us OR (excluded.event_us = {t}.event_us "
            f"AND (excluded.created_us > {t}.created_us OR (excluded.created_us = "
            f"{t}.created_us AND excluded.vals IS DISTINCT FROM {t}.vals)))"
        )
        self._read = (
            f"SELECT key, vals, event_us, created_us FROM {t} "  # noqa: S608  # nosec B608 - checked table name
            "WHERE view = %s AND key = ANY(%s)"
        )
        conn = self._connection()
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {t} (view text NOT NULL, key text NOT NULL, "
            "vals jsonb NOT NULL, event_us bigint NOT NULL, created_us bigint NOT NULL, "
            "PRIMARY KEY (view, key))".encode()
        )

    def _connection(self) -> psycopg.Connection[tuple[object, ...]]:
        conn: psycopg.Connection[tuple[object, ...]] | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = psycopg.connect(self._conninfo, autocommit=True)
            conn.execute("SET synchronous_commit = off")  # a lost tail is re-materialized
            self._local.conn = conn
            with self._lock:
                self._opened.append(conn)
        return conn

    def write(self, view: str, rows: Iterable[StoredRow]) -> int:
        newest = newest_per_key(rows)
        conn = self._connection()
        written = 0
        for start in range(0, len(newest), _BATCH):
            chunk = newest[start : start + _BATCH]
            cursor = conn.execute(
                self._upsert.encode(),
                (
                    view,
                    [r.key for r in chunk],
                    [r.encode() for r in chunk],
                    [to_micros(r.event) for r in chunk],
                    [to_micros(r.created) for r in chunk],
                ),
            )
            written += max(cursor.rowcount, 0)
        return written

    def read(self, view: str, keys: Sequence[str]) -> list[StoredRow | None]:
        found = self._connection().execute(self._read.encode(), (view, list(keys))).fetchall()
        rows: dict[str, StoredRow] = {}
        for key, vals, event, created in found:
            assert isinstance(key, str)
            assert isinstance(vals, dict)
            assert isinstance(event, int)
            assert isinstance(created, int)
            rows[key] = StoredRow(key, vals, from_micros(event), from_micros(created))
        return [rows.get(k) for k in keys]

    def delete_view(self, view: str) -> int:
        cursor = self._connection().execute(
            f"DELETE FROM {self.table} WHERE view = %s".encode(),  # noqa: S608 # nosec B608
            (view,),
        )
        return max(cursor.rowcount, 0)

    def count(self, view: str) -> int:
        row = (
            self._connection()
            .execute(
                f"SELECT count(*) FROM {self.table} WHERE view = %s".encode(),  # noqa: S608 # nosec B608
                (view,),
            )
            .fetchone()
        )
        assert row is not None
        return int(str(row[0]))

    def close(self) -> None:
        with self._lock:
            for conn in self._opened:
                conn.close()
            self._opened.clear()
        self._local = threading.local()
