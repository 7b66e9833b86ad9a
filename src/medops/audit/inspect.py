"""One audit record as an auditor inspects it: every stored field, its place in its chain,
the signed checkpoint that covers it, and a bounded check of its chain up to it.

Verifying the whole log (``CheckpointService.verify``) reads every record and every row bound
to one, which takes seconds per million records: too slow for a page view. The check here
reads only the record's own chain, at most ``CHAIN_CHECK_LIMIT`` records back from it: their
positions, links and hashes, their MACs (the server holds the key), and the chain's signed
opening when the window reaches it. What it leaves out (other chains, the Merkle roots of
checkpoints, the rows bound to records, the time rules) is what the full verification adds,
and the result says how far back it looked.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from medops.audit import anchor
from medops.audit.chain import HASHED_FIELDS, link_findings, mac_matches
from medops.audit.schemas import AuditEventOut
from medops.audit.service import AuditService, to_out
from medops.audit.tables import AuditCheckpoint, AuditEvent, checkpoint_fields
from medops.audit.verify import checkpoint_body
from medops.errors import NotFoundError

CHAIN_CHECK_LIMIT = 5000  # records of the chain read back from the inspected one
_COLUMNS = (
    AuditEvent.seq,
    AuditEvent.hash,
    AuditEvent.mac,
    *(getattr(AuditEvent, f) for f in HASHED_FIELDS),
)


class CheckpointOut(BaseModel):
    """A signed checkpoint: the range it covers, when and with which key it was signed, and
    whether its signature verifies with the server's key."""

    id: int
    created_at: datetime
    from_seq: int
    to_seq: int
    record_count: int
    merkle_root: str
    key_id: str
    signature_verifies: bool


class ChainCheck(BaseModel):
    """The check of a record's chain up to it: from which position, how many records, and
    what did not verify (empty when all did)."""

    from_chain_seq: int
    records: int
    whole_chain: bool
    macs_checked: bool
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


class AuditRecordOut(BaseModel):
    """An audit record with its chain fields, covering checkpoint and chain check."""

    event: AuditEventOut
    chain_id: str
    chain_seq: int
    prev_hash: str
    hash: str
    mac: str | None
    checkpoint: CheckpointOut | None
    check: ChainCheck


def last_checkpoint(audit: AuditService) -> CheckpointOut | None:
    """The latest signed checkpoint, or None before the first."""
    with audit.db.session() as session:
        row = session.scalars(
            select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1)
        ).first()
        return _checkpoint(audit, row) if row is not None else None


def inspect_record(audit: AuditService, seq: int) -> AuditRecordOut:
    """The record at ``seq`` as ``AuditRecordOut``; NotFoundError when there is none."""
    with audit.db.session() as session:
        row = session.get(AuditEvent, seq)
        if row is None:
            raise NotFoundError(f"no audit record has sequence number {seq}")
        covering = session.scalars(
            select(AuditCheckpoint)
            .where(AuditCheckpoint.from_seq <= seq, AuditCheckpoint.to_seq >= seq)
            .order_by(AuditCheckpoint.id)
            .limit(1)
        ).first()
        return AuditRecordOut(
            event=to_out(row),
            chain_id=row.chain_id,
            chain_seq=row.chain_seq,
            prev_hash=row.prev_hash,
            hash=row.hash,
            mac=row.mac,
            checkpoint=_checkpoint(audit, covering) if covering is not None else None,
            check=_check_chain(audit, session, row.chain_id, row.chain_seq),
        )


def _checkpoint(audit: AuditService, row: AuditCheckpoint) -> CheckpointOut:
    fields = checkpoint_fields(row)
    public = audit.signing_keys()[0].public_key()
    try:
        public.verify(base64.b64decode(row.signature, validate=True), checkpoint_body(fields))
        verifies = True
    except (InvalidSignature, ValueError, binascii.Error):
        verifies = False
    return CheckpointOut(
        id=row.id,
        created_at=row.created_at,
        from_seq=row.from_seq,
        to_seq=row.to_seq,
        record_count=row.record_count,
        merkle_root=row.merkle_root,
        key_id=row.key_id,
        signature_verifies=verifies,
    )


def _check_chain(audit: AuditService, session: Session, chain_id: str, upto: int) -> ChainCheck:
    """Links, hashes and MACs of the chain's records up to ``upto`` (at most
    CHAIN_CHECK_LIMIT of them), and the opening when the window starts the chain."""
    start = max(1, upto - CHAIN_CHECK_LIMIT + 1)
    rows = [
        dict(r)
        for r in session.execute(
            select(*_COLUMNS)
            .where(
                AuditEvent.chain_id == chain_id,
                AuditEvent.chain_seq >= start - 1,
                AuditEvent.chain_seq <= upto,
            )
            .order_by(AuditEvent.chain_seq)
        ).mappings()
    ]
    before: dict[str, Any] | None = None
    if start > 1:
        if rows and rows[0]["chain_seq"] == start - 1:
            before = rows.pop(0)
        else:
            before = {"chain_seq": start - 1, "hash": "(missing)"}
    problems = [f"{where}: {why}" for _seq, where, why in link_findings(chain_id, rows, before)]
    keys = audit.signing_keys()
    anchored = _anchored(session, chain_id)
    if start == 1 and rows:
        opening = rows[0]
        if opening["action"] == anchor.OPEN_ACTION:
            reason = anchor.opening_problem(opening, keys[0].public_key())
            if reason:
                problems.append(f"chain {chain_id} #1: {reason}")
    if anchored:
        problems += [
            f"chain {chain_id} #{r['chain_seq']}: its MAC does not match (written without the key)"
            for r in rows
            if not mac_matches(keys[1], str(r["hash"]), r["mac"])
        ]
    return ChainCheck(
        from_chain_seq=start,
        records=len(rows),
        whole_chain=start == 1,
        macs_checked=anchored,
        problems=problems,
    )


def _anchored(session: Session, chain_id: str) -> bool:
    """Whether the chain starts with a signed opening (chains from before anchoring carry
    no MACs)."""
    first = session.scalar(
        select(AuditEvent.action).where(
            AuditEvent.chain_id == chain_id,
            AuditEvent.chain_seq
            == select(func.min(AuditEvent.chain_seq))
            .where(AuditEvent.chain_id == chain_id)
            .scalar_subquery(),
        )
    )
    return first == anchor.OPEN_ACTION
