"""feature store, online side: materialization state per view and store, deployments bound
to feature views

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 07:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from medops.db.base import UTCDateTime

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feature_materializations",
        sa.Column("view", sa.String(length=64), nullable=False),
        sa.Column("store", sa.String(length=64), nullable=False),
        sa.Column("definition_digest", sa.String(length=71), nullable=False),
        sa.Column("watermark", UTCDateTime(), nullable=True),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("rows_read", sa.Integer(), nullable=False),
        sa.Column("rows_written", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("view", "store", name=op.f("pk_feature_materializations")),
    )
    op.create_table(
        "feature_bindings",
        sa.Column("deployment", sa.String(length=64), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=71), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("deployment", name=op.f("pk_feature_bindings")),
    )


def downgrade() -> None:
    op.drop_table("feature_bindings")
    op.drop_table("feature_materializations")
