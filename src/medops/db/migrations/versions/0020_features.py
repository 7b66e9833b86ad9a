"""feature store: the versioned registry of feature definitions (entities, feature views,
on-demand features, feature services)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 07:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from medops.db.base import UTCDateTime

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feature_definitions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=71), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feature_definitions")),
        sa.UniqueConstraint("kind", "name", "version", name="uq_feature_definitions_version"),
    )
    op.create_index(
        "ix_feature_definitions_kind_name", "feature_definitions", ["kind", "name"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_feature_definitions_kind_name", table_name="feature_definitions")
    op.drop_table("feature_definitions")
