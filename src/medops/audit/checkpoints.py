"""Signed checkpoints of the audit log, and reading the log back for verification.

A checkpoint signs (Ed25519) the Merkle root of the records since the previous checkpoint,
the head of every chain, and the previous checkpoint's digest. Copies exported to a second
location (``MEDOPS_AUDIT_CHECKPOINT_DIR``) let ``medops audit verify --checkpoints`` notice a
database whose tail, or whose checkpoints, were removed or rewritten.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from sqlalchemy import func, select, text

from medops.audit import signing
from medops.audit.chain import HASHED_FIELDS, canonical_value
from medops.audit.models import AuditCheckpoint, AuditEvent
from medops.audit.schemas import AuditEntry
from medops.audit.service import AuditService
from medops.audit.verify import (
    GENESIS,
    Report,
    checkpoint_body,
    checkpoint_digest,
    merkle_root_of,
    verify,
)
from medops.clock import Clock
from medops.context import SYSTEM_ACTOR, Context, Origin
from medops.db.engine import Database
from medops.files import write_private

SYSTEM = Context(actor=SYSTEM_ACTOR, origin=Origin(source_ip="local"))


def record_rows(db: Database) -> list[dict[str, Any]]:
    """Every audit record as a plain dict (what ``verify`` reads), in sequence order."""
    columns = [AuditEvent.seq, AuditEvent.hash, *(getattr(AuditEvent, f) for f in HASHED_FIELDS)]
    with db.session() as session:
        rows = session.execute(select(*columns).order_by(AuditEvent.seq)).mappings().all()
    return [dict(row) for row in rows]


def checkpoint_rows(db: Database) -> list[dict[str, Any]]:
    with db.session() as session:
        rows = session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id)).all()
    return [_as_dict(row) for row in rows]


def _as_dict(row: AuditCheckpoint) -> dict[str, Any]:
    return {
        "created_at": canonical_value(row.created_at),
        "from_seq": row.from_seq,
        "to_seq": row.to_seq,
        "record_count": row.record_count,
        "merkle_root": row.merkle_root,
        "chain_heads": row.chain_heads,
        "previous": row.previous,
        "key_id": row.key_id,
        "signature": row.signature,
    }


def verify_database(
    db: Database, *, exported: Path | None = None, public_key: Ed25519PublicKey | None = None
) -> tuple[Report, list[dict[str, Any]]]:
    """Verify the log stored in ``db`` (and the copies in ``exported``); also returns the
    records read, for callers that check more."""
    records = record_rows(db)
    report = verify(
        records,
        checkpoint_rows(db),
        exported=read_exported(exported) if exported else (),
        public_key=public_key,
    )
    return report, records


def read_exported(folder: Path) -> list[dict[str, Any]]:
    """The checkpoint copies in ``folder`` (``checkpoint-*.json``), oldest first."""
    return [json.loads(p.read_text()) for p in sorted(folder.glob("checkpoint-*.json"))]


class CheckpointService:
    """Makes checkpoints: signs them and exports a copy."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        audit: AuditService,
        key_file: Path,
        export_dir: Path | None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._key_file = key_file
        self._export_dir = export_dir

    def key(self) -> Ed25519PrivateKey:
        return signing.load_or_create(self._key_file)

    def pending_records(self) -> int:
        """How many records no checkpoint covers yet (by sequence number)."""
        with self._db.session() as session:
            signed = session.scalar(select(func.max(AuditCheckpoint.to_seq))) or 0
            latest = session.scalar(select(func.max(AuditEvent.seq))) or 0
        return max(0, int(latest) - int(signed))

    def checkpoint(self) -> dict[str, Any] | None:
        """Sign the records since the last checkpoint; None when there are none.

        On PostgreSQL, EXCLUSIVE on audit_checkpoints makes concurrent checkpoints queue
        instead of forking, and SHARE ROW EXCLUSIVE on audit_events waits for every transaction
        still inserting records (from any process) and holds new ones back for the moment it
        takes, so no record below the signed range can commit later. SQLite write transactions
        are serial already (BEGIN IMMEDIATE)."""
        key = self.key()
        with self._db.transaction() as session:
            if self._db.dialect == "postgresql":
                # Checkpointers queue on audit_checkpoints first; then SHARE ROW EXCLUSIVE on
                # audit_events waits for every transaction still inserting records (and is
                # compatible with this transaction's own insert of its audit record).
                session.execute(text("LOCK TABLE audit_checkpoints IN EXCLUSIVE MODE"))
                session.execute(text("LOCK TABLE audit_events IN SHARE ROW EXCLUSIVE MODE"))
            now = self._clock.now()
            last = session.scalars(
                select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1)
            ).first()
            from_seq = last.to_seq + 1 if last else 1
            to_seq = session.scalar(select(func.max(AuditEvent.seq)))
            if to_seq is None or to_seq < from_seq:
                return None
            hashes = session.execute(
                select(AuditEvent.seq, AuditEvent.hash)
                .where(AuditEvent.seq >= from_seq, AuditEvent.seq <= to_seq)
                .order_by(AuditEvent.seq)
            ).all()
            heads = self._heads(session, to_seq)
            body: dict[str, Any] = {
                "created_at": canonical_value(now),
                "from_seq": from_seq,
                "to_seq": to_seq,
                "record_count": len(hashes),
                "merkle_root": merkle_root_of([{"seq": s, "hash": h} for s, h in hashes]),
                "chain_heads": json.dumps(heads, sort_keys=True, separators=(",", ":")),
                "previous": checkpoint_digest(_as_dict(last)) if last else GENESIS,
                "key_id": signing.key_id(key.public_key()),
            }
            body["signature"] = base64.b64encode(key.sign(checkpoint_body(body))).decode()
            self._audit.record(
                session,
                SYSTEM,
                AuditEntry(
                    action="audit.checkpoint",
                    resource_type="audit",
                    resource_id=f"{from_seq}..{to_seq}",
                    details={"records": len(hashes), "merkle_root": body["merkle_root"]},
                ),
            )
            session.add(
                AuditCheckpoint(
                    created_at=now,
                    from_seq=from_seq,
                    to_seq=to_seq,
                    record_count=len(hashes),
                    merkle_root=body["merkle_root"],
                    chain_heads=body["chain_heads"],
                    previous=body["previous"],
                    key_id=body["key_id"],
                    signature=body["signature"],
                )
            )
        if self._export_dir is not None:
            self._export(body | {"public_key": signing.public_b64(key.public_key())})
        return body

    @staticmethod
    def _heads(session: Any, to_seq: int) -> dict[str, list[Any]]:
        latest = (
            select(AuditEvent.chain_id, func.max(AuditEvent.chain_seq).label("top"))
            .where(AuditEvent.seq <= to_seq)
            .group_by(AuditEvent.chain_id)
            .subquery()
        )
        rows = session.execute(
            select(AuditEvent.chain_id, AuditEvent.chain_seq, AuditEvent.hash).join(
                latest,
                (AuditEvent.chain_id == latest.c.chain_id) & (AuditEvent.chain_seq == latest.c.top),
            )
        ).all()
        return {chain: [seq, digest] for chain, seq, digest in rows}

    def _export(self, copy: dict[str, Any]) -> None:
        assert self._export_dir is not None
        target = self._export_dir / f"checkpoint-{copy['to_seq']:012d}.json"
        write_private(target, json.dumps(copy, indent=2, sort_keys=True))  # 0600, folder 0700
