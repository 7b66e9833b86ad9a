"""Table of the audit domain: one row per audited action, appended and never changed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from medops.core.canonical import utc_text
from medops.db.base import Base, UTCDateTime


class AuditEvent(Base):
    """Who did what, when, from where, with what result, on which (pseudonymous) patient."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    )
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor_id: Mapped[str | None] = mapped_column(String(64), index=True)
    actor_name: Mapped[str | None] = mapped_column(String(64))
    actor_role: Mapped[str | None] = mapped_column(String(32))
    auth_method: Mapped[str | None] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64), index=True)
    resource_type: Mapped[str | None] = mapped_column(String(64))
    resource_id: Mapped[str | None] = mapped_column(String(128))
    patient_ref: Mapped[str | None] = mapped_column(String(128), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(500))
    source_ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(256))
    request_id: Mapped[str | None] = mapped_column(String(128))
    details: Mapped[str | None] = mapped_column(Text)
    chain_id: Mapped[str] = mapped_column(String(64))
    chain_seq: Mapped[int] = mapped_column(BigInteger)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # HMAC of ``hash`` under the key derived from the audit signing key (chain.record_mac);
    # empty on records written before chains were anchored (migration 0012).
    mac: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (UniqueConstraint("chain_id", "chain_seq"),)


class AuditCheckpoint(Base):
    """A signed summary of the log: Merkle root of a range of records and every chain's head.

    Exported to a second location, checkpoints make truncation and rewriting detectable."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    from_seq: Mapped[int] = mapped_column(BigInteger)
    to_seq: Mapped[int] = mapped_column(BigInteger)
    record_count: Mapped[int] = mapped_column(BigInteger)
    merkle_root: Mapped[str] = mapped_column(String(64))
    chain_heads: Mapped[str] = mapped_column(Text)
    previous: Mapped[str] = mapped_column(String(64), unique=True)
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))


def checkpoint_fields(row: AuditCheckpoint) -> dict[str, Any]:
    """A stored checkpoint as the plain dict its signature and digest are computed over."""
    return {
        "created_at": utc_text(row.created_at),
        "from_seq": row.from_seq,
        "to_seq": row.to_seq,
        "record_count": row.record_count,
        "merkle_root": row.merkle_root,
        "chain_heads": row.chain_heads,
        "previous": row.previous,
        "key_id": row.key_id,
        "signature": row.signature,
    }
