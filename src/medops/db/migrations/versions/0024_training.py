"""retraining: training specifications, runs, the one-active-run guard and triggers

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06 07:10:00

``training_specs`` versions each model's training specification; ``training_runs`` records
each run (pinned data, parameters, code commit, environment, logs, candidate version);
``training_active``'s primary key keeps one queued or running run per model;
``training_triggers`` and ``training_trigger_events`` hold the triggers and their firings.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from medops.db.base import UTCDateTime

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "training_specs",
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("model", "version", name=op.f("pk_training_specs")),
    )
    op.create_table(
        "training_runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("trigger_id", sa.String(length=32), nullable=True),
        sa.Column("spec_version", sa.Integer(), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("dataset", sa.String(length=128), nullable=False),
        sa.Column("dataset_root", sa.String(length=80), nullable=False),
        sa.Column("parameters", sa.Text(), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("started_by", sa.String(length=64), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("candidate_version", sa.Integer(), nullable=True),
        sa.Column("code_commit", sa.String(length=64), nullable=True),
        sa.Column("environment", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("mlflow_run", sa.String(length=200), nullable=True),
        sa.Column("logs", sa.Text(), nullable=False),
        sa.Column("candidate_report", sa.String(length=64), nullable=True),
        sa.Column("within_plan", sa.Boolean(), nullable=True),
        sa.Column("rollout", sa.String(length=64), nullable=True),
        sa.Column("rollout_state", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_runs")),
    )
    op.create_index(op.f("ix_training_runs_model"), "training_runs", ["model"])
    op.create_index(op.f("ix_training_runs_requested_at"), "training_runs", ["requested_at"])
    op.create_table(
        "training_active",
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("model", name=op.f("pk_training_active")),
    )
    op.create_table(
        "training_triggers",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("checked_at", UTCDateTime(), nullable=False),
        sa.Column("last_fired_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_triggers")),
    )
    op.create_index(op.f("ix_training_triggers_model"), "training_triggers", ["model"])
    op.create_table(
        "training_trigger_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("trigger_id", sa.String(length=32), nullable=True),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_trigger_events")),
    )
    op.create_index(
        op.f("ix_training_trigger_events_trigger_id"), "training_trigger_events", ["trigger_id"]
    )
    op.create_index(op.f("ix_training_trigger_events_model"), "training_trigger_events", ["model"])


def downgrade() -> None:
    op.drop_table("training_trigger_events")
    op.drop_table("training_triggers")
    op.drop_table("training_active")
    op.drop_table("training_runs")
    op.drop_table("training_specs")
