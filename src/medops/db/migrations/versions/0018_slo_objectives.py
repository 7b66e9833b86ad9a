"""alerting: service-level objectives as versioned documents

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 21:10:00

``slo_objectives`` keeps every version of each deployment's (or every deployment's: ``*``)
objectives: availability, latency and model quality targets over a rolling 28 or 30 days.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from medops.db.base import UTCDateTime

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slo_objectives",
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("scope", "version", name=op.f("pk_slo_objectives")),
    )


def downgrade() -> None:
    op.drop_table("slo_objectives")
