"""alerting: alerts, silences, notification groups, versioned documents, job leases

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 21:00:00

``alerts`` holds each alert's life (pending, firing, acknowledged, resolved; ``open_key``
unique while open), ``alert_silences`` the silences, ``alert_groups`` the routing tree's
notification groups with their timers and escalation, ``alert_documents`` every version of the
rule sets and of the routing configuration, and ``job_leases`` one lease per background job so
that it runs once per tick across replicas.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from medops.db.base import UTCDateTime

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_documents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_documents")),
        sa.UniqueConstraint("kind", "scope", "version", name="uq_alert_document_version"),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("open_key", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("deployment", sa.String(length=64), nullable=True),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("team", sa.String(length=32), nullable=False),
        sa.Column("labels", sa.Text(), nullable=False),
        sa.Column("annotations", sa.Text(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("evidence", sa.String(length=500), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("silenced", sa.Boolean(), nullable=False),
        sa.Column("inhibited", sa.Boolean(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("firing_at", UTCDateTime(), nullable=True),
        sa.Column("acknowledged_at", UTCDateTime(), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=64), nullable=True),
        sa.Column("acknowledge_note", sa.String(length=500), nullable=True),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("resolved_by", sa.String(length=64), nullable=True),
        sa.Column("resolve_note", sa.String(length=500), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("open_key", name=op.f("uq_alerts_open_key")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        for column in ("fingerprint", "deployment", "state", "resolved_at"):
            batch_op.create_index(batch_op.f(f"ix_alerts_{column}"), [column], unique=False)
    op.create_table(
        "alert_silences",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("matchers", sa.Text(), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expired_at", UTCDateTime(), nullable=True),
        sa.Column("expired_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_silences")),
    )
    with op.batch_alter_table("alert_silences", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_silences_ends_at"), ["ends_at"], unique=False)
    op.create_table(
        "alert_groups",
        sa.Column("group_key", sa.String(length=200), nullable=False),
        sa.Column("receiver", sa.String(length=64), nullable=True),
        sa.Column("escalation", sa.String(length=64), nullable=True),
        sa.Column("group_labels", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("alert_ids", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=True),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
        sa.Column("last_notified_at", UTCDateTime(), nullable=True),
        sa.Column("transitions", sa.Integer(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("next_escalation_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("group_key", name=op.f("pk_alert_groups")),
    )
    op.create_table(
        "alert_notification_links",
        sa.Column("notification_id", sa.String(length=32), nullable=False),
        sa.Column("alert_id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint(
            "notification_id", "alert_id", name=op.f("pk_alert_notification_links")
        ),
    )
    with op.batch_alter_table("alert_notification_links", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alert_notification_links_alert_id"), ["alert_id"], unique=False
        )
    op.create_table(
        "job_leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("until", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_leases")),
    )


def downgrade() -> None:
    op.drop_table("job_leases")
    op.drop_table("alert_notification_links")
    op.drop_table("alert_groups")
    op.drop_table("alert_silences")
    op.drop_table("alerts")
    op.drop_table("alert_documents")
