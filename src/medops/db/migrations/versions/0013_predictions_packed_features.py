"""predictions: the features packed for monitoring, the positive-class score, shadow indexed

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 15:00:00

``predictions.features`` holds a record's features as little-endian float64s in the model
version's signature order (src/medops/core/packed.py) and ``predictions.score`` the positive
class's probability, so monitoring reads a window as one matrix instead of parsing each row's
JSON. Both are NULL on rows logged before this migration; readers parse those rows' JSON, as
before. A plain ADD COLUMN (no SQLite batch copy), so the append-only triggers stay in place.

The series index gains ``shadow`` (deployment, version, shadow, occurred_at, id): every
monitoring query leaves shadow rows out, and with the flag in the index, counting a series'
rows and finding a count window's first and last keys read the index alone, not the table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


SERIES = "ix_predictions_series"


def upgrade() -> None:
    op.add_column("predictions", sa.Column("features", sa.LargeBinary(), nullable=True))
    op.add_column("predictions", sa.Column("score", sa.Float(), nullable=True))
    op.drop_index(SERIES, table_name="predictions")
    op.create_index(SERIES, "predictions", ["deployment", "version", "shadow", "occurred_at", "id"])


def downgrade() -> None:
    op.drop_index(SERIES, table_name="predictions")
    op.create_index(SERIES, "predictions", ["deployment", "version", "occurred_at", "id"])
    # ALTER TABLE ... DROP COLUMN on both dialects (SQLite >= 3.35): no table copy, so the
    # append-only triggers survive.
    op.execute("ALTER TABLE predictions DROP COLUMN score")
    op.execute("ALTER TABLE predictions DROP COLUMN features")
