"""Signed checkpoints of the audit log, and reading the log back for verification.

A checkpoint signs (Ed25519) the Merkle root of the records since the previous checkpoint,
the head of every chain, and the previous checkpoint's digest. Copies exported to a second
location (``MEDOPS_AUDIT_CHECKPOINT_DIR``) let ``medops audit verify --checkpoints`` notice a
database whose tail, or whose checkpoints, were removed or rewritten.

Before signing, the checkpointer checks every record of the range as verification would
(links, hashes, MACs, openings, time; ``anchor.py``) and refuses to sign a range that holds a
forged, unanchored or backdated record: it writes a failed ``audit.checkpoint`` record naming
the first problem, counts the refusal (``medops_audit_checkpoints_refused_total``) and raises
``AuditTamperedError`` (the server logs it as an error and keeps serving). Most of the range
is checked before the locks are taken, so the locks are held only for what arrived since.
"""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from sqlalchemy import func, select, text, tuple_
from sqlalchemy.orm import Session

from medops.audit import anchor, signing
from medops.audit.bindings import Finding
from medops.audit.chain import HASHED_FIELDS, link_findings
from medops.audit.schemas import AuditEntry, Outcome
from medops.audit.service import AuditService
from medops.audit.tables import AuditCheckpoint, AuditEvent, checkpoint_fields
from medops.audit.verify import (
    GENESIS,
    Problem,
    Report,
    checkpoint_body,
    checkpoint_digest,
    merkle_root_of,
    verify,
)
from medops.clock import Clock
from medops.context import SYSTEM_ACTOR, Context, Origin
from medops.core.canonical import canonical_json, utc_text
from medops.db.engine import Database
from medops.errors import AuditTamperedError, AuditUnavailableError
from medops.files import write_private
from medops.logs import get_logger

SYSTEM = Context(actor=SYSTEM_ACTOR, origin=Origin(source_ip="local"))
RECORD_COLUMNS = (
    AuditEvent.seq,
    AuditEvent.hash,
    AuditEvent.mac,
    *(getattr(AuditEvent, f) for f in HASHED_FIELDS),
)
IN_BATCH = 500  # sequence numbers per IN (...) list
PRECHECK_BATCH = 5000  # records read at a time by the check before the locks
log = get_logger("medops.audit.checkpoints")


@contextmanager
def _reading(source: Database | Session) -> Iterator[Session]:
    if isinstance(source, Session):
        yield source
        return
    with source.session() as session:
        yield session


def record_rows(source: Database | Session) -> list[dict[str, Any]]:
    """Every audit record as a plain dict (what ``verify`` reads), in sequence order."""
    with _reading(source) as session:
        rows = session.execute(select(*RECORD_COLUMNS).order_by(AuditEvent.seq)).mappings().all()
    return [dict(row) for row in rows]


def checkpoint_rows(source: Database | Session) -> list[dict[str, Any]]:
    with _reading(source) as session:
        rows = session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id)).all()
    return [checkpoint_fields(row) for row in rows]


@contextmanager
def snapshot(db: Database) -> Iterator[Session]:
    """A read-only session that sees one snapshot of the database for all its queries
    (SQLite: one deferred transaction; PostgreSQL: REPEATABLE READ)."""
    if db.dialect != "postgresql":
        with db.session() as session:
            yield session
        return
    with db.engine.connect() as plain:
        connection = plain.execution_options(isolation_level="REPEATABLE READ")
        with Session(bind=connection) as session:
            yield session


# Checks the rows the records account for (predictions, outcomes, signatures): how many of each
# kind it read, and what does not match. The rows belong to the registry and serving domains,
# which build on audit, so the checker is handed in (medops/rowcheck.py, wired in services.py)
# instead of imported here.
RowChecker = Callable[
    [Session, Sequence[Mapping[str, Any]], Ed25519PublicKey | None],
    tuple[dict[str, int], list[Finding]],
]


def verify_database(
    db: Database,
    *,
    rows: RowChecker,
    exported: Path | None = None,
    public_key: Ed25519PublicKey | None = None,
    mac_key: bytes | None = None,
) -> tuple[Report, list[dict[str, Any]]]:
    """Verify the log stored in ``db`` (and the copies in ``exported``), and the prediction,
    outcome and signature rows against their records, from one snapshot; also returns the
    records read, for callers that check more."""
    with snapshot(db) as session:
        records = record_rows(session)
        report = verify(
            records,
            checkpoint_rows(session),
            exported=read_exported(exported) if exported else (),
            public_key=public_key,
            mac_key=mac_key,
        )
        report.rows, findings = rows(session, records, public_key)
    report.problems.extend(Problem(seq, where, reason, "row") for seq, where, reason in findings)
    return report, records


def read_exported(folder: Path) -> list[dict[str, Any]]:
    """The checkpoint copies in ``folder`` (``checkpoint-*.json``), oldest first."""
    return [json.loads(p.read_text()) for p in sorted(folder.glob("checkpoint-*.json"))]


@dataclass
class _Checked:
    """What the check before the locks saw: the range it read, each record's hash, and the
    findings (of the first batch that had any)."""

    from_seq: int = 1
    to_seq: int = 1
    hashes: dict[int, str] = field(default_factory=dict)
    findings: list[anchor.Finding] = field(default_factory=list)


class CheckpointService:
    """Makes checkpoints: checks the range, signs it and exports a copy."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        audit: AuditService,
        export_dir: Path | None,
        rows: RowChecker,
    ) -> None:
        self._db = db
        self._check_rows = rows
        self._clock = clock
        self._audit = audit
        self._export_dir = export_dir
        self._first_opening: tuple[int, datetime] | None = None
        self._last_refusal: tuple[int, int | None, str] | None = None
        self.refusals = 0  # checkpoints refused for a problem in their range (a metric)

    def key(self) -> Ed25519PrivateKey:
        """The audit signing key (the audit service's, read once per process)."""
        return self._audit.signing_keys()[0]

    def verify(self) -> Report:
        """Verify the whole log and the rows bound to it, as the server can: with its own
        key (openings, checkpoints and MACs) and its exported copies when it has them."""
        key, mac_key = self._audit.signing_keys()
        folder = self._export_dir if self._export_dir and self._export_dir.is_dir() else None
        report, _records = verify_database(
            self._db,
            rows=self._check_rows,
            exported=folder,
            public_key=key.public_key(),
            mac_key=mac_key,
        )
        if not report.ok:
            first = report.first
            log.error(
                "audit verification failed",
                problems=len(report.problems),
                first_seq=first.seq if first else None,
            )
        return report

    def pending_records(self) -> int:
        """How many records no checkpoint covers yet (by sequence number)."""
        with self._db.session() as session:
            signed = session.scalar(select(func.max(AuditCheckpoint.to_seq))) or 0
            latest = session.scalar(select(func.max(AuditEvent.seq))) or 0
        return max(0, int(latest) - int(signed))

    def checkpoint(self, *, accept: str | None = None) -> dict[str, Any] | None:
        """Check and sign the records since the last checkpoint; None when there are none.

        A range with a problem is refused (``AuditTamperedError``) unless ``accept`` gives
        the reason to sign it anyway (after the intrusion was investigated: the problems stay
        in the log, verification keeps reporting them, and later records are protected again).

        On PostgreSQL, EXCLUSIVE on audit_checkpoints makes concurrent checkpoints queue
        instead of forking, and SHARE ROW EXCLUSIVE on audit_events waits for every transaction
        still inserting records (from any process) and holds new ones back for the moment it
        takes, so no record below the signed range can commit later. SQLite write transactions
        are serial already (BEGIN IMMEDIATE)."""
        key, mac_key = self._audit.signing_keys()
        checked = self._precheck(key.public_key(), mac_key)
        if checked.findings and accept is None:  # no need to lock anything to refuse
            self._refuse(checked.from_seq, checked.to_seq, checked.findings)
        refused: tuple[int, int, list[anchor.Finding]] | None = None
        body: dict[str, Any] | None = None
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
            findings = [f for f in checked.findings if f[0] is None or f[0] >= from_seq]
            late = [seq for seq, digest in hashes if checked.hashes.get(seq) != digest]
            if late and accept is None:  # accepted: signed as it stands, problems and all
                rows = self._rows(session, late)
                findings += self._check(session, rows, last, key.public_key(), mac_key)
            if findings and accept is None:
                refused = (from_seq, to_seq, findings)
            else:
                body, row = self._sign(session, key, now, last, from_seq, to_seq, hashes)
                # The record first: it may open this process's chain, which reads the last
                # checkpoint (an autoflush of the new one before its record would be refused).
                self._audit.record(
                    session, SYSTEM, self._entry(from_seq, to_seq, body, findings, accept)
                )
                session.add(row)
        if refused is not None:
            self._refuse(*refused)
        assert body is not None
        if self._export_dir is not None:
            self._export(body | {"public_key": signing.public_b64(key.public_key())})
        return body

    def _sign(
        self,
        session: Session,
        key: Ed25519PrivateKey,
        now: datetime,
        last: AuditCheckpoint | None,
        from_seq: int,
        to_seq: int,
        hashes: Sequence[Any],
    ) -> tuple[dict[str, Any], AuditCheckpoint]:
        """The signed body of the checkpoint of ``from_seq..to_seq`` and its row (not added)."""
        heads = self._heads(session, to_seq)
        body: dict[str, Any] = {
            "created_at": utc_text(now),
            "from_seq": from_seq,
            "to_seq": to_seq,
            "record_count": len(hashes),
            "merkle_root": merkle_root_of([{"seq": s, "hash": h} for s, h in hashes]),
            "chain_heads": canonical_json(heads, ascii_only=True),
            "previous": checkpoint_digest(checkpoint_fields(last)) if last else GENESIS,
            "key_id": signing.key_id(key.public_key()),
        }
        body["signature"] = base64.b64encode(key.sign(checkpoint_body(body))).decode()
        row = AuditCheckpoint(
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
        return body, row

    @staticmethod
    def _entry(
        from_seq: int,
        to_seq: int,
        body: Mapping[str, Any],
        findings: Sequence[anchor.Finding],
        accept: str | None,
    ) -> AuditEntry:
        details: dict[str, Any] = {
            "records": body["record_count"],
            "merkle_root": body["merkle_root"],
        }
        reason = None
        if findings:
            first = _first(findings)
            details |= {"accepted_problems": len(findings), "first_seq": first[0]}
            reason = f"signed despite problems (first: seq {first[0]}): {accept}"
        return AuditEntry(
            action="audit.checkpoint",
            resource_type="audit",
            resource_id=f"{from_seq}..{to_seq}",
            reason=reason,
            details=details,
        )

    def _refuse(self, from_seq: int, to_seq: int, findings: list[anchor.Finding]) -> None:
        """Record (once per distinct problem) and count the refusal, then raise (the server
        logs the alarm; the CLI prints it)."""
        first = _first(findings)
        where = f"seq {first[0]} ({first[1]})" if first[0] is not None else first[1]
        message = (
            f"audit checkpoint refused: {len(findings)} problem(s) in records "
            f"{from_seq}..{to_seq}; first: {where}: {first[2]}"
        )
        self.refusals += 1
        if self._last_refusal != (from_seq, first[0], first[2]):
            entry = AuditEntry(
                action="audit.checkpoint",
                outcome=Outcome.FAILURE,
                resource_type="audit",
                resource_id=f"{from_seq}..{to_seq}",
                reason=message,
                details={"problems": len(findings), "first_seq": first[0]},
            )
            try:
                self._audit.record_alone(SYSTEM, entry)
            except AuditUnavailableError:
                # A record forged onto this writer's own chain makes its next write collide;
                # the writer then starts a new chain, so the second attempt lands.
                self._audit.record_alone(SYSTEM, entry)
            self._last_refusal = (from_seq, first[0], first[2])
        raise AuditTamperedError(message)

    def _precheck(self, public_key: Ed25519PublicKey, mac_key: bytes) -> _Checked:
        """Check the records since the last checkpoint without holding any lock, PRECHECK_BATCH
        at a time, stopping at the first batch with a problem (memory stays bounded however
        long checkpoints have been refused)."""
        checked = _Checked()
        with self._db.session() as session:
            last = session.scalars(
                select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1)
            ).first()
            checked.from_seq = checked.to_seq = last.to_seq + 1 if last else 1
            while not checked.findings:
                rows = [
                    dict(row)
                    for row in session.execute(
                        select(*RECORD_COLUMNS)
                        .where(AuditEvent.seq >= checked.to_seq)
                        .order_by(AuditEvent.seq)
                        .limit(PRECHECK_BATCH)
                    ).mappings()
                ]
                if not rows:
                    break
                checked.hashes.update((row["seq"], row["hash"]) for row in rows)
                checked.findings = self._check(session, rows, last, public_key, mac_key)
                checked.to_seq = rows[-1]["seq"]
                if len(rows) < PRECHECK_BATCH:
                    break
                checked.to_seq += 1
        return checked

    @staticmethod
    def _rows(session: Session, seqs: Sequence[int]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for start in range(0, len(seqs), IN_BATCH):
            part = seqs[start : start + IN_BATCH]
            statement = select(*RECORD_COLUMNS).where(AuditEvent.seq.in_(part))
            rows.extend(dict(row) for row in session.execute(statement).mappings())
        return rows

    def _check(
        self,
        session: Session,
        rows: Sequence[dict[str, Any]],
        last: AuditCheckpoint | None,
        public_key: Ed25519PublicKey,
        mac_key: bytes,
    ) -> list[anchor.Finding]:
        """The verification rules for ``rows`` (runs of chains that follow stored records)."""
        chains: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            chains[row["chain_id"]].append(row)
        for members in chains.values():
            members.sort(key=lambda r: r["chain_seq"])
        before = self._records_at(
            session,
            [(c, m[0]["chain_seq"] - 1) for c, m in chains.items() if m[0]["chain_seq"] > 1],
        )
        firsts = self._records_at(
            session, [(c, 1) for c, m in chains.items() if m[0]["chain_seq"] > 1]
        )
        index = self._index(session, last, [*rows, *firsts.values()])
        first_opening = self._opening(session, public_key)
        findings: list[anchor.Finding] = []
        for chain_id, members in chains.items():
            start = members[0]["chain_seq"]
            previous = before.get((chain_id, start - 1))
            findings += link_findings(chain_id, members, previous)
            findings += anchor.chain_findings(
                chain_id,
                members,
                first=firsts.get((chain_id, 1), members[0]),
                before=previous,
                first_opening=first_opening,
                index=index,
                public_key=public_key,
                mac_key=mac_key,
            )
        return findings

    @staticmethod
    def _records_at(
        session: Session, positions: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], dict[str, Any]]:
        found: dict[tuple[str, int], dict[str, Any]] = {}
        for start in range(0, len(positions), IN_BATCH):
            part = positions[start : start + IN_BATCH]
            statement = select(*RECORD_COLUMNS).where(
                tuple_(AuditEvent.chain_id, AuditEvent.chain_seq).in_(part)
            )
            for row in session.execute(statement).mappings():
                found[(row["chain_id"], row["chain_seq"])] = dict(row)
        return found

    @staticmethod
    def _index(
        session: Session, last: AuditCheckpoint | None, rows: Sequence[Mapping[str, Any]]
    ) -> anchor.Checkpointed:
        """The last checkpoint, and those the openings among ``rows`` name."""
        wanted: set[int] = set()
        for row in rows:
            opening = anchor.opening_of(row) if row["action"] == anchor.OPEN_ACTION else None
            after = (opening or {}).get("after_checkpoint")
            if isinstance(after, dict):
                wanted.add(after["to_seq"])
        stored = (
            list(session.scalars(select(AuditCheckpoint).where(AuditCheckpoint.to_seq.in_(wanted))))
            if wanted
            else []
        )
        if last is not None:
            stored.append(last)
        fields = [checkpoint_fields(c) for c in stored]
        return anchor.checkpointed(fields, [checkpoint_digest(f) for f in fields])

    def _opening(
        self, session: Session, public_key: Ed25519PublicKey
    ) -> tuple[int, datetime] | None:
        """(seq, time) of the log's first validly signed chain opening; remembered once found."""
        if self._first_opening is None:
            candidates = session.execute(
                select(*RECORD_COLUMNS)
                .where(AuditEvent.action == anchor.OPEN_ACTION, AuditEvent.chain_seq == 1)
                .order_by(AuditEvent.seq)
                .limit(20)
            ).mappings()
            for row in candidates:
                if anchor.valid_opening(dict(row), public_key):
                    self._first_opening = (int(row["seq"]), row["occurred_at"])
                    break
        return self._first_opening

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


def _first(findings: Sequence[anchor.Finding]) -> anchor.Finding:
    """The finding at the lowest sequence number (else the first one)."""
    numbered = [f for f in findings if f[0] is not None]
    return min(numbered, key=lambda f: f[0] or 0) if numbered else findings[0]
