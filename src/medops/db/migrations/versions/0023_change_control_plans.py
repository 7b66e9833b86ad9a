"""retraining: change-control plans, their signatures, candidate reports and rollouts

Revision ID: 0023
Revises: 0019
Create Date: 2026-12-06 07:10:00

``change_control_plans`` keeps every version of a model's plan (canonical JSON and hash),
``change_control_plan_signatures`` the sealed signatures that activate one,
``retraining_candidate_reports`` each candidate judged against a plan, and
``retraining_rollouts`` a within-plan candidate's way through shadow and canary.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from medops.db.base import UTCDateTime

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def _signed_by() -> list[sa.Column[object]]:
    return [
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("printed_name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("meaning", sa.String(length=32), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("method", sa.String(length=64), nullable=False),
        sa.Column("signed_at", UTCDateTime(), nullable=False),
        sa.Column("manifest_hash", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("server_signature", sa.String(length=128), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "change_control_plans",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.String(length=32), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("plan_hash", sa.String(length=64), nullable=False),
        sa.Column("champion", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("activated_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.id"],
            name=op.f("fk_change_control_plans_model_id_registered_models"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_control_plans")),
        sa.UniqueConstraint("model_id", "number", name="uq_change_control_plans_number"),
    )
    with op.batch_alter_table("change_control_plans", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_change_control_plans_model_id"), ["model_id"], unique=False
        )

    op.create_table(
        "change_control_plan_signatures",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("plan_id", sa.String(length=32), nullable=False),
        *_signed_by(),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["change_control_plans.id"],
            name=op.f("fk_change_control_plan_signatures_plan_id_change_control_plans"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_control_plan_signatures")),
    )
    with op.batch_alter_table("change_control_plan_signatures", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_change_control_plan_signatures_plan_id"), ["plan_id"], unique=False
        )

    op.create_table(
        "retraining_candidate_reports",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.String(length=32), nullable=False),
        sa.Column("version_id", sa.String(length=32), nullable=False),
        sa.Column("plan_id", sa.String(length=32), nullable=False),
        sa.Column("within_plan", sa.Boolean(), nullable=False),
        sa.Column("report", sa.Text(), nullable=False),
        sa.Column("report_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.id"],
            name=op.f("fk_retraining_candidate_reports_model_id_registered_models"),
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["change_control_plans.id"],
            name=op.f("fk_retraining_candidate_reports_plan_id_change_control_plans"),
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name=op.f("fk_retraining_candidate_reports_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retraining_candidate_reports")),
    )
    with op.batch_alter_table("retraining_candidate_reports", schema=None) as batch_op:
        for column in ("created_at", "model_id", "version_id"):
            batch_op.create_index(
                batch_op.f(f"ix_retraining_candidate_reports_{column}"), [column], unique=False
            )

    op.create_table(
        "retraining_rollouts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("deployment", sa.String(length=64), nullable=False),
        sa.Column("plan_id", sa.String(length=32), nullable=False),
        sa.Column("report_id", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("step", sa.Integer(), nullable=True),
        sa.Column("phase_started_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("started_by", sa.String(length=64), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("events", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.id"],
            name=op.f("fk_retraining_rollouts_model_id_registered_models"),
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["change_control_plans.id"],
            name=op.f("fk_retraining_rollouts_plan_id_change_control_plans"),
        ),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["retraining_candidate_reports.id"],
            name=op.f("fk_retraining_rollouts_report_id_retraining_candidate_reports"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retraining_rollouts")),
    )
    with op.batch_alter_table("retraining_rollouts", schema=None) as batch_op:
        for column in ("deployment", "model_id", "state"):
            batch_op.create_index(
                batch_op.f(f"ix_retraining_rollouts_{column}"), [column], unique=False
            )


def downgrade() -> None:
    with op.batch_alter_table("retraining_rollouts", schema=None) as batch_op:
        for column in ("deployment", "model_id", "state"):
            batch_op.drop_index(batch_op.f(f"ix_retraining_rollouts_{column}"))
    op.drop_table("retraining_rollouts")
    with op.batch_alter_table("retraining_candidate_reports", schema=None) as batch_op:
        for column in ("created_at", "model_id", "version_id"):
            batch_op.drop_index(batch_op.f(f"ix_retraining_candidate_reports_{column}"))
    op.drop_table("retraining_candidate_reports")
    with op.batch_alter_table("change_control_plan_signatures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_change_control_plan_signatures_plan_id"))
    op.drop_table("change_control_plan_signatures")
    with op.batch_alter_table("change_control_plans", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_change_control_plans_model_id"))
    op.drop_table("change_control_plans")
