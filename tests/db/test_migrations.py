"""Alembic migrations build exactly the schema the ORM expects, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text

from medops.audit.checkpoints import verify_database
from medops.audit.tables import AuditEvent
from medops.db import migrate
from medops.db.engine import Database
from medops.metadata import metadata
from medops.rowcheck import check_rows


def test_upgrade_from_empty_reaches_head_and_matches_the_models(empty_db_url: str) -> None:
    """No drift between migrations and models: autogenerate finds nothing to add."""
    database = Database(empty_db_url)
    try:
        assert migrate.current_revision(database) is None
        assert not migrate.is_current(database)
        migrate.upgrade(database)
        assert migrate.current_revision(database) == migrate.head_revision()
        with database.engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), metadata)
        assert diff == []
    finally:
        database.dispose()


def test_downgrade_to_base_removes_every_table_and_upgrade_restores_them(db_url: str) -> None:
    """Migrations are reversible."""
    database = Database(db_url)
    try:
        migrate.downgrade(database, "base")
        tables = set(inspect(database.engine).get_table_names()) - {"alembic_version"}
        assert tables == set()
        migrate.upgrade(database)
        tables = set(inspect(database.engine).get_table_names())
        assert {"users", "api_tokens", "audit_events"} <= tables
    finally:
        database.dispose()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_runs_in_wal_mode_with_foreign_keys_enforced(db_url: str) -> None:
    """Every SQLite connection gets WAL, foreign keys on and a busy timeout."""
    database = Database(db_url)
    try:
        with database.engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 10000
    finally:
        database.dispose()


def test_timestamps_round_trip_as_aware_utc(db_url: str) -> None:
    """A time given in any zone comes back as the same instant, marked UTC."""
    database = Database(db_url)
    given = datetime(2026, 3, 29, 2, 30, tzinfo=timezone(timedelta(hours=2)))
    try:
        with database.transaction() as session:
            session.add(
                AuditEvent(
                    occurred_at=given,
                    action="t",
                    outcome="success",
                    chain_id="test",
                    chain_seq=1,
                    prev_hash="0" * 64,
                    hash="0" * 64,
                )
            )
        with database.session() as session:
            stored = session.scalar(select(AuditEvent.occurred_at))
        assert stored == given
        assert stored is not None
        assert stored.tzinfo == UTC
    finally:
        database.dispose()


def test_naive_timestamps_are_refused(db_url: str) -> None:
    """A naive datetime is ambiguous in a medical record, so it never reaches the database."""
    database = Database(db_url)
    try:
        with pytest.raises(Exception, match="naive datetime"), database.transaction() as session:
            session.add(AuditEvent(occurred_at=datetime(2026, 1, 1), action="t", outcome="success"))
    finally:
        database.dispose()


def test_records_written_before_0003_are_chained_by_the_migration(empty_db_url: str) -> None:
    """Upgrading a 0002 database with audit rows puts them in one verifiable chain."""
    database = Database(empty_db_url)
    try:
        migrate.upgrade(database, "0002")
        with database.engine.begin() as connection:
            for n in range(5):
                connection.execute(
                    text(
                        "INSERT INTO audit_events (occurred_at, action, outcome, resource_id)"
                        " VALUES (:t, 'user.create', 'success', :r)"
                    ),
                    {"t": datetime(2026, 1, 1, 8, n, tzinfo=UTC), "r": f"u{n}"},
                )
        migrate.upgrade(database)
        report, records = verify_database(database, rows=check_rows)
    finally:
        database.dispose()
    assert report.ok, report.first
    assert [(r["chain_id"], r["chain_seq"]) for r in records] == [
        ("migrated-0003", n) for n in range(1, 6)
    ]
