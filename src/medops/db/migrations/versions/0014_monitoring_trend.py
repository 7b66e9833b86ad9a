"""monitoring_results: each window's charted numbers stored beside its document

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 18:30:00

``monitoring_results.trend_keys`` holds the names of the numbers the console charts of a
window (a JSON prefix tree) and ``trend`` the numbers as little-endian float32s in that order
(monitoring/trend.py), so a chart of 90 days of hourly windows unpacks 2,160 small rows instead
of parsing 2,160 documents of 40-70 KB. The migration only adds the columns (it carries no
copy of the code that computes a trend): a row without one (stored before this migration, or
by an older server after it) is computed from its document the first time a chart reads it,
and kept then (``MonitoringService.trend``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


# SQLite reads a row's columns in order, and reaching a column stored after a 50 KB ``result``
# walks that value's chain of overflow pages: reading the trends of 2,160 windows took 220 ms
# instead of a few. So on SQLite the table is rebuilt with the small columns (``sequence`` and
# the trend included) before ``result``; PostgreSQL keeps large values out of line (TOAST) and
# adds the columns in place.
ORDER = (
    "id", "deployment", "model_name", "version", "window_kind", "sequence", "window_start",
    "window_end", "rows", "labelled", "status", "verdict", "drifted", "alerts", "computed_at",
    "trend_keys", "trend", "result",
)  # fmt: skip


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table(
        "monitoring_results",
        recreate="always" if sqlite else "auto",
        partial_reordering=[ORDER] if sqlite else None,
    ) as batch_op:
        batch_op.add_column(sa.Column("trend_keys", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("trend", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE monitoring_results DROP COLUMN trend")
    op.execute("ALTER TABLE monitoring_results DROP COLUMN trend_keys")
