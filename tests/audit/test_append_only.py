"""The database itself refuses to change or remove audit records and checkpoints."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from medops.core.permissions import Role
from medops.services import Services
from tests.helpers.people import make_user


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET outcome = 'failure'",
        "DELETE FROM audit_events",
        "UPDATE audit_checkpoints SET merkle_root = 'x'",
        "DELETE FROM audit_checkpoints",
    ],
)
def test_raw_sql_cannot_update_or_delete_history(services: Services, statement: str) -> None:
    """Triggers refuse UPDATE and DELETE even for the table's owner."""
    make_user(services, "ada", Role.CLINICIAN)
    assert services.checkpoints.checkpoint() is not None
    with pytest.raises(DBAPIError, match="append-only"), services.db.engine.begin() as conn:
        conn.execute(text(statement))


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_postgresql_refuses_truncate_too(services: Services) -> None:
    """TRUNCATE bypasses row triggers, so a statement trigger refuses it."""
    make_user(services, "bo", Role.CLINICIAN)
    with pytest.raises(DBAPIError, match="append-only"), services.db.engine.begin() as conn:
        conn.execute(text("TRUNCATE audit_events"))


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_insert_or_replace_cannot_overwrite_a_record(services: Services) -> None:
    """REPLACE deletes the row it collides with without firing delete triggers: refused too."""
    make_user(services, "cy", Role.CLINICIAN)
    with pytest.raises(DBAPIError, match="append-only"), services.db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT OR REPLACE INTO audit_events (seq, occurred_at, action, outcome, "
                "chain_id, chain_seq, prev_hash, hash) "
                "SELECT seq, occurred_at, 'user.view', outcome, chain_id, chain_seq, prev_hash, "
                "hash FROM audit_events WHERE seq = 1"
            )
        )


def test_pending_records_count_what_no_checkpoint_covers(services: Services) -> None:
    """The server's 'every N records' trigger reads this count."""
    make_user(services, "dee", Role.CLINICIAN)  # the chain's opening, user.create, auth.login
    assert services.checkpoints.pending_records() == 3
    services.checkpoints.checkpoint()
    assert services.checkpoints.pending_records() == 1  # the checkpoint's own record
