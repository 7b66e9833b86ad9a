"""alerting: the notification outbox

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 21:00:00

``alert_notifications`` holds every notification until it is sent: unique per (group,
transition, level, receiver) through ``dedup_key``, claimed by one replica at a time.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from medops.db.base import UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_notifications",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("dedup_key", sa.String(length=255), nullable=False),
        sa.Column("receiver", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("group_key", sa.String(length=255), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_notifications")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_alert_notifications_dedup_key")),
    )
    with op.batch_alter_table("alert_notifications", schema=None) as batch_op:
        for column in ("receiver", "group_key", "status", "next_attempt_at"):
            batch_op.create_index(
                batch_op.f(f"ix_alert_notifications_{column}"), [column], unique=False
            )


def downgrade() -> None:
    op.drop_table("alert_notifications")
