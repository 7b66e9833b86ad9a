"""registry: policy changes that loosen a promotion policy, and their signatures

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 02:00:00

A change that loosens a model's promotion policy no longer applies at once: it waits in
model_policy_changes until two people, one a clinician, have signed it
(model_policy_signatures, sealed like version approvals).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from medops.db.base import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_policy_changes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("before_policy", sa.Text(), nullable=False),
        sa.Column("after_policy", sa.Text(), nullable=False),
        sa.Column("before_hash", sa.String(length=64), nullable=False),
        sa.Column("after_hash", sa.String(length=64), nullable=False),
        sa.Column("loosenings", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("proposed_at", UTCDateTime(), nullable=False),
        sa.Column("proposed_by", sa.String(length=64), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.id"],
            name=op.f("fk_model_policy_changes_model_id_registered_models"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_policy_changes")),
    )
    with op.batch_alter_table("model_policy_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_model_policy_changes_model_id"), ["model_id"], unique=False
        )
    op.create_table(
        "model_policy_signatures",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("change_id", sa.String(length=32), nullable=False),
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
        sa.ForeignKeyConstraint(
            ["change_id"],
            ["model_policy_changes.id"],
            name=op.f("fk_model_policy_signatures_change_id_model_policy_changes"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_policy_signatures")),
    )
    with op.batch_alter_table("model_policy_signatures", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_model_policy_signatures_change_id"), ["change_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("model_policy_signatures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_policy_signatures_change_id"))
    op.drop_table("model_policy_signatures")
    with op.batch_alter_table("model_policy_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_policy_changes_model_id"))
    op.drop_table("model_policy_changes")
