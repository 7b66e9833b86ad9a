"""audit: hash chains, checkpoints, append-only triggers

Existing records are chained, in sequence order, into one chain named "migrated-0003".
Note for later migrations: SQLite "batch" operations recreate the table, which drops its
triggers; any migration that batch-alters audit_events or audit_checkpoints must call
create_append_only_triggers() again.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 16:33:20.876061
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from medops.db.base import UTCDateTime

# Frozen here (as medops.audit.chain hashed a record when this revision was written), so a
# later change to live code cannot change what this migration did.
GENESIS = "0" * 64
HASHED_FIELDS = (
    "chain_id",
    "chain_seq",
    "prev_hash",
    "occurred_at",
    "actor_id",
    "actor_name",
    "actor_role",
    "auth_method",
    "action",
    "resource_type",
    "resource_id",
    "patient_ref",
    "outcome",
    "reason",
    "source_ip",
    "user_agent",
    "request_id",
    "details",
)


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            msg = "times must be timezone-aware"
            raise ValueError(msg)
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value


def record_hash(record: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the record's canonical JSON (sorted keys, compact, UTF-8)."""
    fields = {field: _value(record.get(field)) for field in HASHED_FIELDS}
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


APPEND_ONLY_TABLES = ("audit_events", "audit_checkpoints")
MIGRATED_CHAIN = "migrated-0003"


def create_append_only_triggers() -> None:
    """The database itself refuses UPDATE, DELETE (and on PostgreSQL TRUNCATE) of audit rows."""
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for table in APPEND_ONLY_TABLES:
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                )
        # INSERT OR REPLACE deletes the row it collides with without firing delete triggers
        # (unless recursive_triggers is on), so a colliding insert is refused outright.
        for table, clash in (
            (
                "audit_events",
                "seq = NEW.seq OR (chain_id = NEW.chain_id AND chain_seq = NEW.chain_seq)",
            ),
            ("audit_checkpoints", "id = NEW.id OR previous = NEW.previous"),
        ):
            op.execute(
                f"CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table} "  # nosec B608 - constants
                f"WHEN EXISTS (SELECT 1 FROM {table} WHERE {clash}) "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )
        return
    op.execute(
        "CREATE OR REPLACE FUNCTION medops_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION '% is append-only (% refused)', TG_TABLE_NAME, TG_OP; END $$"
    )
    for table in APPEND_ONLY_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION medops_append_only()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION medops_append_only()"
        )
        # Roles other than the owner never get to change history (the application should
        # connect as such a role; see docs/operations.md).
        op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM PUBLIC")


def drop_append_only_triggers() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for table in APPEND_ONLY_TABLES:
            for verb in ("update", "delete", "replace"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
        return
    for table in APPEND_ONLY_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
    op.execute("DROP FUNCTION IF EXISTS medops_append_only()")


def upgrade() -> None:
    op.create_table(
        "audit_checkpoints",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("from_seq", sa.BigInteger(), nullable=False),
        sa.Column("to_seq", sa.BigInteger(), nullable=False),
        sa.Column("record_count", sa.BigInteger(), nullable=False),
        sa.Column("merkle_root", sa.String(length=64), nullable=False),
        sa.Column("chain_heads", sa.Text(), nullable=False),
        sa.Column("previous", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_checkpoints")),
        # Two checkpoints after the same one would fork the checkpoint chain.
        sa.UniqueConstraint("previous", name=op.f("uq_audit_checkpoints_previous")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chain_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("chain_seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))

    events = sa.table(
        "audit_events",
        sa.column("seq"),
        sa.column("hash"),
        sa.column("occurred_at", UTCDateTime()),
        *(sa.column(name) for name in HASHED_FIELDS if name != "occurred_at"),
    )
    bind = op.get_bind()
    prev = GENESIS
    rows = bind.execute(sa.select(events).order_by(events.c.seq)).mappings().all()
    for position, row in enumerate(rows, start=1):
        record = {**row, "chain_id": MIGRATED_CHAIN, "chain_seq": position, "prev_hash": prev}
        digest = record_hash(record)
        bind.execute(
            events.update()
            .where(events.c.seq == row["seq"])
            .values(chain_id=MIGRATED_CHAIN, chain_seq=position, prev_hash=prev, hash=digest)
        )
        prev = digest

    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        for name, kind in (
            ("chain_id", sa.String(length=64)),
            ("chain_seq", sa.BigInteger()),
            ("prev_hash", sa.String(length=64)),
            ("hash", sa.String(length=64)),
        ):
            batch_op.alter_column(name, existing_type=kind, nullable=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_audit_events_chain_id"), ["chain_id", "chain_seq"]
        )
    create_append_only_triggers()


def downgrade() -> None:
    drop_append_only_triggers()
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_audit_events_chain_id"), type_="unique")
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("chain_seq")
        batch_op.drop_column("chain_id")
    op.drop_table("audit_checkpoints")
