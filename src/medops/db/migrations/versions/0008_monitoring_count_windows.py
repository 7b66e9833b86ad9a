"""monitoring: count windows (window kinds up to 16 characters, a sequence per window)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 04:20:00

A window is now identified in its series by ``sequence`` (time windows: whole windows since
the epoch; count windows: their index in the log), since consecutive count windows may start
at the same moment (a batch of predictions shares one timestamp). Existing rows (time windows
only) get their sequence from their start.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

from medops.db.base import UTCDateTime

# Frozen here (as medops.core.windows computed it when this revision was written), so a
# later change to live code cannot change what this migration did.
_LENGTH = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}
_EPOCH = {
    "hour": datetime(1970, 1, 1, tzinfo=UTC),
    "day": datetime(1970, 1, 1, tzinfo=UTC),
    "week": datetime(1970, 1, 5, tzinfo=UTC),  # a Monday
}


def sequence_of(start: datetime, kind: str) -> int:
    """The place in its series of the time window of ``kind`` starting at ``start``."""
    utc = start.astimezone(UTC)
    hour = utc.replace(minute=0, second=0, microsecond=0)
    day = hour.replace(hour=0)
    floor = (
        hour if kind == "hour" else day if kind == "day" else day - timedelta(days=day.weekday())
    )
    return int((floor - _EPOCH[kind]) // _LENGTH[kind])


revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("monitoring_results", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sequence", sa.BigInteger(), nullable=True))
        batch_op.alter_column(
            "window_kind", existing_type=sa.String(length=8), type_=sa.String(length=16)
        )
    table = sa.table(
        "monitoring_results",
        sa.column("id", sa.Integer()),
        sa.column("window_kind", sa.String()),
        sa.column("window_start", UTCDateTime()),
        sa.column("sequence", sa.BigInteger()),
    )
    connection = op.get_bind()
    for row in connection.execute(sa.select(table.c.id, table.c.window_kind, table.c.window_start)):
        connection.execute(
            table.update()
            .where(table.c.id == row.id)
            .values(sequence=sequence_of(row.window_start, row.window_kind))
        )
    with op.batch_alter_table("monitoring_results", schema=None) as batch_op:
        batch_op.alter_column("sequence", existing_type=sa.BigInteger(), nullable=False)
        batch_op.drop_constraint("uq_monitoring_window", type_="unique")
        batch_op.create_unique_constraint(
            "uq_monitoring_window", ["deployment", "version", "window_kind", "sequence"]
        )


def downgrade() -> None:
    # count windows have no place in the old schema
    op.execute("DELETE FROM monitoring_results WHERE window_kind LIKE 'count:%'")
    with op.batch_alter_table("monitoring_results", schema=None) as batch_op:
        batch_op.drop_constraint("uq_monitoring_window", type_="unique")
        batch_op.create_unique_constraint(
            "uq_monitoring_window", ["deployment", "version", "window_kind", "window_start"]
        )
        batch_op.drop_column("sequence")
        batch_op.alter_column(
            "window_kind", existing_type=sa.String(length=16), type_=sa.String(length=8)
        )
