"""The embedded online store: one SQLite file (WAL), one row per (view, entity key).

Reads use a connection per thread (SQLite connections are not shared between threads);
writes go through one connection under a lock, in one transaction per batch.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from medops.features.online.base import (
    StoredRow,
    decode_values,
    from_micros,
    newest_per_key,
    to_micros,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feature_online (
    view TEXT NOT NULL,
    key TEXT NOT NULL,
    vals TEXT NOT NULL,
    event_us INTEGER NOT NULL,
    created_us INTEGER NOT NULL,
    PRIMARY KEY (view, key)
) WITHOUT ROWID
"""
_UPSERT = """
INSERT INTO feature_online (view, key, vals, event_us, created_us) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (view, key) DO UPDATE SET
    vals = excluded.vals, event_us = excluded.event_us, created_us = excluded.created_us
WHERE excluded.event_us > feature_online.event_us
   OR (excluded.event_us = feature_online.event_us
       AND (excluded.created_us > feature_online.created_us
            OR (excluded.created_us = feature_online.created_us
                AND excluded.vals != feature_online.vals)))
"""
_READ_ONE = "SELECT key, vals, event_us, created_us FROM feature_online WHERE view = ? AND key = ?"


class SqliteOnlineStore:
    """The online store in one SQLite file (``sqlite:///path``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = Path(url.removeprefix("sqlite:///"))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        conn = self._connection()
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(_SCHEMA)
        conn.commit()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            with self._lock:
                self._opened.append(conn)
        return conn

    def write(self, view: str, rows: Iterable[StoredRow]) -> int:
        params = [
            (view, r.key, r.encode(), to_micros(r.event), to_micros(r.created))
            for r in newest_per_key(rows)
        ]
        if not params:
            return 0
        conn = self._connection()
        with self._lock, conn:
            cursor = conn.executemany(_UPSERT, params)
            return max(cursor.rowcount, 0)

    def read(self, view: str, keys: Sequence[str]) -> list[StoredRow | None]:
        conn = self._connection()
        if len(keys) == 1:
            found = conn.execute(_READ_ONE, (view, keys[0])).fetchall()
        else:
            marks = ",".join("?" * len(keys))
            found = conn.execute(
                "SELECT key, vals, event_us, created_us FROM feature_online "  # noqa: S608
                f"WHERE view = ? AND key IN ({marks})",  # nosec B608 - placeholders only
                (view, *keys),
            ).fetchall()
        rows = {
            key: StoredRow(key, decode_values(vals), from_micros(event), from_micros(created))
            for key, vals, event, created in found
        }
        return [rows.get(k) for k in keys]

    def delete_view(self, view: str) -> int:
        conn = self._connection()
        with self._lock, conn:
            return conn.execute("DELETE FROM feature_online WHERE view = ?", (view,)).rowcount

    def count(self, view: str) -> int:
        conn = self._connection()
        (n,) = conn.execute(
            "SELECT count(*) FROM feature_online WHERE view = ?", (view,)
        ).fetchone()
        return int(n)

    def close(self) -> None:
        with self._lock:
            for conn in self._opened:
                conn.close()
            self._opened.clear()
        self._local = threading.local()
