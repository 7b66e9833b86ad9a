"""explanations: a deployment's always-explain option and the explanations of predictions

Revision ID: 0022
Revises: 0019
Create Date: 2026-12-06 07:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(
            sa.Column("explain", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "prediction_explanations",
        sa.Column("prediction_id", sa.String(length=32), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("exact", sa.Boolean(), nullable=False),
        sa.Column("scale", sa.String(length=16), nullable=False),
        sa.Column("base_value", sa.Float(), nullable=False),
        sa.Column("output", sa.Float(), nullable=False),
        sa.Column("error_estimate", sa.Float(), nullable=True),
        sa.Column("shown", sa.Integer(), nullable=False),
        sa.Column("contributions", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["prediction_id"],
            ["predictions.id"],
            name=op.f("fk_prediction_explanations_prediction_id_predictions"),
        ),
        sa.PrimaryKeyConstraint("prediction_id", name=op.f("pk_prediction_explanations")),
    )


def downgrade() -> None:
    op.drop_table("prediction_explanations")
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("explain")
