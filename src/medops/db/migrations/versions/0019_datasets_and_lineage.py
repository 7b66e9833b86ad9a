"""datasets and lineage: dataset versions, encrypted objects, replicas, legal holds,
de-identification projects and mappings, the DICOM series index, lineage edges and the
OpenLineage event outbox

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 00:20:49
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from medops.db.base import UTCDateTime

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "data_blobs",
        sa.Column("digest", sa.String(length=71), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("parts", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_data_blobs")),
    )
    op.create_table(
        "data_deid_projects",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("sealed_secret", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_data_deid_projects")),
    )
    op.create_table(
        "data_objects",
        sa.Column("digest", sa.String(length=71), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("kek_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_data_objects")),
    )
    op.create_table(
        "data_replicas",
        sa.Column("remote", sa.String(length=255), nullable=False),
        sa.Column("digest", sa.String(length=71), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("upload_id", sa.Text(), nullable=True),
        sa.Column("parts_done", sa.Text(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("remote", "digest", name=op.f("pk_data_replicas")),
    )
    op.create_table(
        "datasets",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_datasets")),
    )
    op.create_table(
        "lineage_edges",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source_kind", sa.String(length=32), nullable=False),
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("target_kind", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("relation", sa.String(length=32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lineage_edges")),
        sa.UniqueConstraint(
            "source_kind",
            "source_id",
            "target_kind",
            "target_id",
            "relation",
            name="uq_lineage_edges_edge",
        ),
    )
    with op.batch_alter_table("lineage_edges", schema=None) as batch_op:
        batch_op.create_index("ix_lineage_edges_source", ["source_kind", "source_id"], unique=False)
        batch_op.create_index("ix_lineage_edges_target", ["target_kind", "target_id"], unique=False)

    op.create_table(
        "lineage_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lineage_events")),
    )
    with op.batch_alter_table("lineage_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lineage_events_sent_at"), ["sent_at"], unique=False)

    op.create_table(
        "dataset_versions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("dataset", sa.String(length=128), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("root", sa.String(length=71), nullable=False),
        sa.Column("manifest", sa.String(length=71), nullable=False),
        sa.Column("file_count", sa.Integer(), nullable=False),
        sa.Column("total_bytes", sa.BigInteger(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("derived_from", sa.String(length=32), nullable=True),
        sa.Column("derivation", sa.String(length=32), nullable=True),
        sa.Column("deidentification", sa.Text(), nullable=True),
        sa.Column("contents", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("deleted_at", UTCDateTime(), nullable=True),
        sa.Column("deleted_by", sa.String(length=64), nullable=True),
        sa.Column("deleted_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset"], ["datasets.name"], name=op.f("fk_dataset_versions_dataset_datasets")
        ),
        sa.ForeignKeyConstraint(
            ["derived_from"],
            ["dataset_versions.id"],
            name=op.f("fk_dataset_versions_derived_from_dataset_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_versions")),
        sa.UniqueConstraint("dataset", "number", name="uq_dataset_versions_dataset_number"),
    )
    with op.batch_alter_table("dataset_versions", schema=None) as batch_op:
        batch_op.create_index("ix_dataset_versions_dataset_root", ["dataset", "root"], unique=False)

    op.create_table(
        "data_deid_mappings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("pseudonym", sa.String(length=128), nullable=False),
        sa.Column("sealed_original", sa.Text(), nullable=False),
        sa.Column("version_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project"],
            ["data_deid_projects.name"],
            name=op.f("fk_data_deid_mappings_project_data_deid_projects"),
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["dataset_versions.id"],
            name=op.f("fk_data_deid_mappings_version_id_dataset_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_deid_mappings")),
        sa.UniqueConstraint("project", "kind", "pseudonym", name="uq_data_deid_mappings_pseudonym"),
    )
    op.create_table(
        "data_dicom_series",
        sa.Column("version_id", sa.String(length=32), nullable=False),
        sa.Column("series_uid", sa.String(length=64), nullable=False),
        sa.Column("study_uid", sa.String(length=64), nullable=True),
        sa.Column("patient_ref", sa.String(length=128), nullable=True),
        sa.Column("modality", sa.String(length=16), nullable=True),
        sa.Column("manufacturer", sa.String(length=128), nullable=True),
        sa.Column("model_name", sa.String(length=128), nullable=True),
        sa.Column("body_part", sa.String(length=64), nullable=True),
        sa.Column("slices", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("burned_in", sa.Integer(), nullable=False),
        sa.Column("deidentified", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["dataset_versions.id"],
            name=op.f("fk_data_dicom_series_version_id_dataset_versions"),
        ),
        sa.PrimaryKeyConstraint("version_id", "series_uid", name=op.f("pk_data_dicom_series")),
    )
    with op.batch_alter_table("data_dicom_series", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_data_dicom_series_patient_ref"), ["patient_ref"], unique=False
        )

    op.create_table(
        "data_holds",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("dataset", sa.String(length=128), nullable=False),
        sa.Column("version_id", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("placed_at", UTCDateTime(), nullable=False),
        sa.Column("placed_by", sa.String(length=64), nullable=False),
        sa.Column("released_at", UTCDateTime(), nullable=True),
        sa.Column("released_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset"], ["datasets.name"], name=op.f("fk_data_holds_dataset_datasets")
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["dataset_versions.id"],
            name=op.f("fk_data_holds_version_id_dataset_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_holds")),
    )
    with op.batch_alter_table("data_holds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_data_holds_dataset"), ["dataset"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("data_holds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_data_holds_dataset"))

    op.drop_table("data_holds")
    with op.batch_alter_table("data_dicom_series", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_data_dicom_series_patient_ref"))

    op.drop_table("data_dicom_series")
    op.drop_table("data_deid_mappings")
    with op.batch_alter_table("dataset_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_dataset_versions_dataset_root")

    op.drop_table("dataset_versions")
    with op.batch_alter_table("lineage_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lineage_events_sent_at"))

    op.drop_table("lineage_events")
    with op.batch_alter_table("lineage_edges", schema=None) as batch_op:
        batch_op.drop_index("ix_lineage_edges_target")
        batch_op.drop_index("ix_lineage_edges_source")

    op.drop_table("lineage_edges")
    op.drop_table("datasets")
    op.drop_table("data_replicas")
    op.drop_table("data_objects")
    op.drop_table("data_deid_projects")
    op.drop_table("data_blobs")
