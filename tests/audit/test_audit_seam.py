"""A change and its audit record commit together or not at all."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from medops.audit.checkpoints import record_rows
from medops.audit.schemas import AuditEntry
from medops.audit.service import AuditGuardError, AuditService
from medops.audit.tables import AuditEvent
from medops.audit.verify import verify
from medops.auth.schemas import UserCreate
from medops.auth.tables import User
from medops.core.permissions import Role
from medops.services import Services
from tests.helpers.people import SYSTEM_CTX


def _count(services: Services, model: type[User] | type[AuditEvent]) -> int:
    with services.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _break_audit_inserts(services: Services, backend: str) -> None:
    """Make the database itself refuse audit inserts, as a full disk or lost volume would."""
    with services.db.engine.begin() as connection:
        if backend == "sqlite":
            connection.execute(
                text(
                    "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events "
                    "BEGIN SELECT RAISE(ABORT, 'audit storage unavailable'); END"
                )
            )
        else:
            connection.execute(
                text(
                    "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'audit storage unavailable'; END $$"
                )
            )
            connection.execute(
                text(
                    "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_audit()"
                )
            )


def test_when_the_audit_record_cannot_be_written_the_change_is_not_made(
    services: Services, backend: str
) -> None:
    """Fail closed: the user is not created when its audit insert fails in the same transaction."""
    users_before = _count(services, User)
    _break_audit_inserts(services, backend)
    with pytest.raises(Exception, match="audit storage unavailable"):
        services.identity.create_user(
            SYSTEM_CTX,
            UserCreate(username="ghost", role=Role.CLINICIAN, password="granite-otter-91"),
        )
    assert _count(services, User) == users_before


def test_a_change_flushed_without_an_audit_record_is_refused(services: Services) -> None:
    """The ORM guard raises before any unaudited change reaches the database."""
    with services.db.session() as session:
        session.add(User(username="sneaky", role="admin", created_at=services.clock.now()))
        with pytest.raises(AuditGuardError, match="without an audit record"):
            session.commit()
    assert _count(services, User) == 0


def test_existing_audit_records_cannot_be_changed_or_deleted_through_the_orm(
    services: Services,
) -> None:
    """Append-only at the application layer (database-level enforcement is the audit issue's)."""
    services.identity.create_user(
        SYSTEM_CTX, UserCreate(username="hank", role=Role.AUDITOR, password="lemon-compass-52")
    )
    created = select(AuditEvent).where(AuditEvent.action == "user.create")
    with services.db.session() as session:
        event = session.scalars(created).one()
        event.outcome = "failure"
        with pytest.raises(AuditGuardError, match="append-only"):
            session.flush()
    with services.db.session() as session:
        session.delete(session.scalars(created).one())
        with pytest.raises(AuditGuardError, match="append-only"):
            session.flush()
    assert _count(services, AuditEvent) == 2  # the chain's opening and user.create


def test_a_writer_whose_head_fell_behind_recovers_from_the_database(services: Services) -> None:
    """If a commit landed but its answer was lost, the next record re-reads the chain head."""
    behind = AuditService(
        services.db, services.clock, key=services.audit.key, chain_id=services.audit.chain_id
    )
    with services.db.transaction() as session:  # the "lost" commit, by the chain's writer
        services.audit.record(session, SYSTEM_CTX, AuditEntry(action="test.first"))
    clash = r"append-only|UNIQUE|unique|duplicate"
    with pytest.raises(DBIntegrityError, match=clash), services.db.transaction() as s:
        behind.record(s, SYSTEM_CTX, AuditEntry(action="test.second"))
    with services.db.transaction() as session:
        behind.record(session, SYSTEM_CTX, AuditEntry(action="test.third"))
    rows = sorted(
        (r for r in record_rows(services.db) if r["chain_id"] == behind.chain_id),
        key=lambda r: r["chain_seq"],
    )
    assert [r["action"] for r in rows] == ["audit.chain.open", "test.first", "test.third"]
    key, mac_key = services.audit.signing_keys()
    assert verify(rows, public_key=key.public_key(), mac_key=mac_key).ok
