"""serving: usage per deployment, minute and server process

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 21:05:00

``serving_usage`` holds what each server process did for each deployment in each minute
(requests, errors, sheds, a latency histogram, CPU, GPU and memory): what SLOs, alert rules on
serving figures and cost reports are computed from, across replicas and restarts.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from medops.db.base import UTCDateTime

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "serving_usage",
        sa.Column("deployment", sa.String(length=64), nullable=False),
        sa.Column("minute", UTCDateTime(), nullable=False),
        sa.Column("replica", sa.String(length=64), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("shed", sa.Integer(), nullable=False),
        sa.Column("client_errors", sa.Integer(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("latency", sa.Text(), nullable=False),
        sa.Column("latency_sum_ms", sa.Float(), nullable=False),
        sa.Column("cpu_seconds", sa.Float(), nullable=False),
        sa.Column("gpu_seconds", sa.Float(), nullable=False),
        sa.Column("memory_byte_seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("deployment", "minute", "replica", name=op.f("pk_serving_usage")),
    )


def downgrade() -> None:
    op.drop_table("serving_usage")
