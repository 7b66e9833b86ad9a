"""Migration 0010 on an installation with data: users referred to by tokens, grants, codes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select, text

from medops.auth.tables import ApiToken, BreakGlassGrant, RecoveryCode, User
from medops.db import migrate
from medops.db.engine import Database

AT = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)


def test_upgrading_a_0009_installation_keeps_every_row_that_refers_to_users(
    empty_db_url: str,
) -> None:
    """users is rebuilt on SQLite (a wider mfa_secret): its rows, and the tokens, grants and
    recovery codes that refer to them, come through; references are checked; the old lockout
    counters are dropped."""
    database = Database(empty_db_url)
    user_id = uuid.uuid4()
    try:
        migrate.upgrade(database, "0009")
        with database.session_factory.begin() as session:
            session.add(
                User(
                    id=user_id, username="ward", role="clinician", password_hash="x",
                    created_at=AT, mfa_secret="JBSWY3DPEHPK3PXP", mfa_enabled_at=AT,
                )
            )  # fmt: skip
            session.flush()
            session.add(
                ApiToken(
                    id="tok_1", user_id=user_id, name="script", kind="api", token_hash="h" * 64,
                    created_at=AT, expires_at=AT,
                )
            )  # fmt: skip
            session.add(RecoveryCode(user_id=user_id, code_hash="c" * 64))
            session.add(
                BreakGlassGrant(
                    id="bg_1", user_id=user_id, permission="audit:read", reason="r" * 12,
                    granted_at=AT, expires_at=AT,
                )
            )  # fmt: skip
        with database.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO login_throttle (username, failures, lockouts) "
                    "VALUES ('ward', 3, 0)"
                )
            )
        migrate.upgrade(database)
        with database.session() as session:
            assert session.scalars(select(User.username)).all() == ["ward"]
            assert session.scalars(select(ApiToken.user_id)).all() == [user_id]
            assert session.scalars(select(BreakGlassGrant.user_id)).all() == [user_id]
            assert session.scalars(select(RecoveryCode.user_id)).all() == [user_id]
            assert session.execute(text("SELECT count(*) FROM login_throttle")).scalar() == 0
        if database.dialect == "sqlite":
            with database.engine.connect() as connection:
                assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        database.dispose()
