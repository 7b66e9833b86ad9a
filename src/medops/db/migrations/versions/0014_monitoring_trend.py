"""monitoring_results: each window's charted numbers stored beside its document

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 18:30:00

``monitoring_results.trend_keys`` holds the names of the numbers the console charts of a
window (a JSON list) and ``trend`` the numbers as little-endian float64s in that order
(monitoring/trend.py), so a chart of 90 days of hourly windows unpacks 2,160 small rows instead
of parsing 2,160 documents of 40-70 KB. Existing rows are filled from their ``result`` with the
same function the server uses when it stores a window; a row still without one (written by an
older server after this migration) is computed from its document when read.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

BATCH = 200


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
    _backfill()


def _backfill() -> None:
    from medops.monitoring.results import WindowResult
    from medops.monitoring.trend import trend_of

    table = sa.table(
        "monitoring_results",
        sa.column("id", sa.Integer()),
        sa.column("result", sa.Text()),
        sa.column("trend_keys", sa.Text()),
        sa.column("trend", sa.LargeBinary()),
    )
    connection = op.get_bind()
    last = 0
    while True:  # in batches by id: a large table is never held in memory at once
        batch = connection.execute(
            sa.select(table.c.id, table.c.result)
            .where(table.c.id > last)
            .order_by(table.c.id)
            .limit(BATCH)
        ).all()
        if not batch:
            return
        for row_id, result in batch:
            keys, packed = trend_of(WindowResult.load(json.loads(result)))
            connection.execute(
                sa.update(table).where(table.c.id == row_id).values(trend_keys=keys, trend=packed)
            )
        last = batch[-1][0]


def downgrade() -> None:
    op.execute("ALTER TABLE monitoring_results DROP COLUMN trend")
    op.execute("ALTER TABLE monitoring_results DROP COLUMN trend_keys")
