"""Counting refused unauthenticated requests: per address, reason and minute, none lost."""

from __future__ import annotations

from datetime import timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from medops.audit.refusals import RefusalTally
from medops.audit.service import AuditService
from medops.audit.tables import AuditEvent
from medops.context import Origin
from medops.db import migrate
from medops.db.engine import Database
from medops.testing import FixedClock

HERE = Origin(source_ip="203.0.113.5", user_agent="curl/8")


def _records(database: Database) -> list[AuditEvent]:
    with database.session() as session:
        return list(
            session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == "auth.refused")
                .order_by(AuditEvent.seq)
            )
        )


def test_a_count_whose_write_fails_is_written_with_the_next(empty_db_url: str) -> None:
    """With no table to write to, the counts stay; once the database is there, they land."""
    database = Database(empty_db_url)
    clock = FixedClock()
    audit = AuditService(database, clock, key=Ed25519PrivateKey.generate)
    tally = RefusalTally(audit, clock)
    try:
        for _ in range(5):
            tally.count(HERE, "GET /api/v1/users", "invalid token")
        clock.advance(timedelta(minutes=1))
        assert tally.flush() == 0  # no schema yet: the write failed
        assert tally.pending() == 5
        migrate.upgrade(database)
        assert tally.flush() == 1
        (record,) = _records(database)
        assert record.details is not None
        assert '"count": 5' in record.details
        assert record.user_agent == "curl/8"
    finally:
        audit.close()
        database.dispose()


def test_the_open_minute_waits_and_past_the_key_limit_addresses_are_pooled(
    db_url: str,
) -> None:
    """Nothing is written before its minute closes; beyond max_keys, addresses are 'other'."""
    database = Database(db_url)
    clock = FixedClock()
    audit = AuditService(database, clock, key=Ed25519PrivateKey.generate)
    tally = RefusalTally(audit, clock, max_keys=2)
    try:
        for n in range(4):
            tally.count(Origin(source_ip=f"198.51.100.{n}"), "GET /x", "invalid token")
        assert tally.flush() == 0
        assert _records(database) == []
        assert tally.flush(everything=True) == 3
        addresses = sorted((r.source_ip or "") for r in _records(database))
        assert addresses == ["198.51.100.0", "198.51.100.1", "other"]
    finally:
        audit.close()
        database.dispose()
