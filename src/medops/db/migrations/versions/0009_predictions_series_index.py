"""predictions: an index on (deployment, version, occurred_at, id) for monitoring's reads

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 05:05:00

Monitoring reads one deployment version's predictions in time order: time windows by range,
count windows by key (occurred_at, then id). Without this index each read sorts the series.
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_predictions_series", ["deployment", "version", "occurred_at", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_index("ix_predictions_series")
