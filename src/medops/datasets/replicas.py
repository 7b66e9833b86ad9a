"""Where each object stands on each remote: the ``data_replicas`` rows.

A row goes ``pending`` (a multipart upload under way: its id and the parts already sent,
each recorded as soon as the remote acknowledges it) -> ``done`` (the object and its key
record are on the remote). A push killed at any point finds the row and resumes the upload
from its parts; an object pulled from a remote is ``done`` there too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from medops.clock import Clock, SystemClock
from medops.datasets.tables import DataReplica
from medops.db.engine import Database

PENDING = "pending"
DONE = "done"


@dataclass(frozen=True)
class Replica:
    """One object's state on one remote."""

    remote: str
    digest: str
    state: str
    upload_id: str | None
    parts: tuple[tuple[int, str], ...]


class Replicas:
    """The replica rows of one remote."""

    def __init__(self, database: Database, remote: str, clock: Clock | None = None) -> None:
        self.database = database
        self.remote = remote
        self.clock = clock or SystemClock()

    def get(self, digest: str) -> Replica | None:
        with self.database.session() as session:
            row = session.get(DataReplica, (self.remote, digest))
            if row is None:
                return None
            parts = tuple((int(n), str(e)) for n, e in json.loads(row.parts_done or "[]"))
            return Replica(row.remote, row.digest, row.state, row.upload_id, parts)

    def done(self, digests: Iterable[str]) -> set[str]:
        """Which of ``digests`` are on the remote."""
        wanted = sorted(set(digests))
        found: set[str] = set()
        with self.database.session() as session:
            for start in range(0, len(wanted), 500):
                batch = wanted[start : start + 500]
                query = select(DataReplica.digest).where(
                    DataReplica.remote == self.remote,
                    DataReplica.state == DONE,
                    DataReplica.digest.in_(batch),
                )
                found.update(session.scalars(query))
        return found

    def _write(
        self, digest: str, state: str, upload_id: str | None, parts: list[tuple[int, str]]
    ) -> None:
        with self.database.transaction() as session:
            row = session.get(DataReplica, (self.remote, digest), with_for_update=True)
            if row is None:
                row = DataReplica(remote=self.remote, digest=digest)
                session.add(row)
            row.state = state
            row.upload_id = upload_id
            row.parts_done = json.dumps(sorted(parts)) if upload_id else None
            row.updated_at = self.clock.now()

    def begin(self, digest: str, upload_id: str) -> None:
        """A multipart upload started (no part sent yet)."""
        self._write(digest, PENDING, upload_id, [])

    def record_part(self, digest: str, upload_id: str, number: int, etag: str) -> None:
        """Part ``number`` of the upload is on the remote."""
        with self.database.transaction() as session:
            row = session.get(DataReplica, (self.remote, digest), with_for_update=True)
            if row is None or row.upload_id != upload_id:
                return  # the upload was replaced meanwhile; this part no longer matters
            parts = {int(n): str(e) for n, e in json.loads(row.parts_done or "[]")}
            parts[number] = etag
            row.parts_done = json.dumps(sorted(parts.items()))
            row.updated_at = self.clock.now()

    def finish(self, digest: str) -> None:
        """The object and its key record are on the remote."""
        self._write(digest, DONE, None, [])

    def forget(self, digest: str) -> None:
        with self.database.transaction() as session:
            row = session.get(DataReplica, (self.remote, digest))
            if row is not None:
                session.delete(row)
