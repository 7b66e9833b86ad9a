"""credentials: throttling keyed by address, account digest or user; room for encrypted TOTP

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28 09:00:00

``login_throttle`` is rebuilt: it counted failures per username typed (stored verbatim, so a
password typed into the username field landed there) and locked the name. It now counts per
client address, per SHA-256 of the account name, and per user's re-authentications. Its rows
are short-lived counters: pending lockouts end with the upgrade.

``users.mfa_secret`` grows to hold the AES-256-GCM ciphertext (auth/mfa_keys.py). Secrets
still in plaintext are encrypted by ``medops db upgrade`` right after this migration, and by
the server when it starts (the key lives outside the database, so Alembic cannot).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from medops.db.base import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("login_throttle")
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("lockouts", sa.Integer(), nullable=False),
        sa.Column("first_failure_at", UTCDateTime(), nullable=True),
        sa.Column("last_failure_at", UTCDateTime(), nullable=True),
        sa.Column("blocked_until", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_throttle")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column(
            "mfa_secret",
            existing_type=sa.String(length=64),
            type_=sa.String(length=255),
            existing_nullable=True,
        )


def downgrade() -> None:
    # Encrypted secrets do not fit the old column: MFA must be enrolled again after a
    # downgrade (a downgrade is for development; production restores a backup instead).
    op.execute(
        sa.text(
            "UPDATE users SET mfa_secret = NULL, mfa_enabled_at = NULL, mfa_last_step = NULL "
            "WHERE mfa_secret IS NOT NULL"
        )
    )
    op.execute(sa.text("DELETE FROM mfa_recovery_codes"))
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column(
            "mfa_secret",
            existing_type=sa.String(length=255),
            type_=sa.String(length=64),
            existing_nullable=True,
        )
    op.drop_table("login_throttle")
    op.create_table(
        "login_throttle",
        sa.Column("username", sa.String(length=128), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("lockouts", sa.Integer(), nullable=False),
        sa.Column("locked_until", UTCDateTime(), nullable=True),
        sa.Column("last_failure_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_login_throttle")),
    )
