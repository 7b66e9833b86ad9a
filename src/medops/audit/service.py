"""The audit seam: every change commits together with its audit record, or not at all.

``AuditSink`` is the interface the tamper-evident, hash-chained log fills;
``DatabaseAuditSink`` appends plain rows in the caller's transaction. ``install_audit_guard``
makes the rule structural: a session that flushes a change without an audit record raises.

Each ``AuditService`` writes one chain. Its first record is a signed ``audit.chain.open``
(``anchor.py``), every record carries a MAC of its hash, and no record is dated before the
one before it in the chain (a clock that steps back is held at the chain's last time).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Select, event, insert, select
from sqlalchemy.orm import Session, sessionmaker

from medops.audit import anchor, signing
from medops.audit.chain import GENESIS, mac_matches, record_hash, record_mac
from medops.audit.schemas import AuditEntry, AuditEventOut, AuditPage, AuditQuery
from medops.audit.tables import AuditCheckpoint, AuditEvent, checkpoint_fields
from medops.audit.verify import checkpoint_digest
from medops.audit.writer import GroupCommitWriter
from medops.clock import Clock
from medops.context import SYSTEM_ACTOR, Context, Origin
from medops.db.engine import Database
from medops.logs import get_logger

log = get_logger("medops.audit")

# (chain_seq, hash, occurred_at) of a chain's last record: what the next one follows.
Tip = tuple[int, str, datetime | None]
OPENING_CTX = Context(actor=SYSTEM_ACTOR, origin=Origin(source_ip="local"))

_AUDITED = "medops.audited"
_EXEMPT = "medops.audit_exempt"
_PENDING = "medops.audit_chain_pending"


def new_chain_id() -> str:
    """A chain of its own for each writer: host, process id and a random suffix."""
    return f"{socket.gethostname()[:32]}-{os.getpid()}-{secrets.token_hex(4)}"


class AuditSink(Protocol):
    """Where audit records go; ``append`` must join the caller's transaction."""

    def append(self, session: Session, event: AuditEvent) -> None:
        """Add the record to the session's transaction."""
        ...


class DatabaseAuditSink:
    """Appends rows to ``audit_events`` in the caller's transaction."""

    def append(self, session: Session, event: AuditEvent) -> None:
        session.add(event)


class AuditGuardError(RuntimeError):
    """A programming error: a change was about to be written without an audit record."""


def install_audit_guard(factory: sessionmaker[Session]) -> None:
    """Refuse any flush that changes data without an audit record in the same transaction,
    and any flush that would change or delete an existing audit record."""

    @event.listens_for(factory, "before_flush")
    def _check(session: Session, _context: Any, _instances: Any) -> None:
        changed = [*session.new, *session.dirty, *session.deleted]
        if any(isinstance(obj, AuditEvent) for obj in [*session.dirty, *session.deleted]):
            raise AuditGuardError("audit records are append-only")
        if any(isinstance(obj, AuditEvent) for obj in session.new):
            session.info[_AUDITED] = True
        if changed and not session.info.get(_AUDITED) and not session.info.get(_EXEMPT):
            kinds = sorted({type(obj).__name__ for obj in changed})
            raise AuditGuardError(f"change to {', '.join(kinds)} without an audit record")

    @event.listens_for(factory, "after_commit")
    def _advance_chain(session: Session) -> None:
        pending = session.info.pop(_PENDING, None)
        if pending is not None:
            service, head = pending
            service._head = head

    @event.listens_for(factory, "after_transaction_end")
    def _reset(session: Session, transaction: Any) -> None:
        if transaction.parent is None:
            session.info.pop(_AUDITED, None)
            session.info.pop(_EXEMPT, None)
            pending = session.info.pop(_PENDING, None)
            if pending is not None:
                # Not committed as far as we know; but a commit whose answer was lost may have
                # landed, so the next record reads the chain head back from the database.
                pending[0]._head_known = False


def exempt_from_audit_guard(session: Session) -> None:
    """Allow this transaction to change rows without an audit record: only for bookkeeping
    that is not an action (a token's last-used time, a reset failure counter)."""
    session.info[_EXEMPT] = True


class AuditService:
    """Writes audit records and reads them back."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        sink: AuditSink | None = None,
        *,
        key: Callable[[], Ed25519PrivateKey],
        chain_id: str | None = None,
    ) -> None:
        self.db = db
        self._clock = clock
        self._sink = sink or DatabaseAuditSink()
        self.key = key  # the audit signing key (read on first use)
        self.chain_id = chain_id or new_chain_id()
        self._head: Tip = (0, GENESIS, None)  # the last committed record of the chain
        self._head_known = True
        self._keys: tuple[Ed25519PrivateKey, bytes] | None = None
        self._keys_lock = threading.Lock()
        self.writer = GroupCommitWriter(self)

    def record(self, session: Session, ctx: Context, entry: AuditEntry) -> None:
        """Append ``entry`` to the caller's transaction: it commits with the change or never.

        The caller holds ``Database.write_lock`` (every ``Database.transaction`` does), so
        this process's chain grows in commit order; the head advances only on commit. The
        chain's first record is preceded by its signed opening."""
        tip = self._chain_tip(session)
        if tip[0] == 0:
            opening = self._opening(session)
            self._sink.append(session, AuditEvent(**opening))
            tip = (1, opening["hash"], opening["occurred_at"])
        values = self._values(ctx, entry, tip)
        session.info[_PENDING] = (
            self,
            (values["chain_seq"], values["hash"], values["occurred_at"]),
        )
        self._sink.append(session, AuditEvent(**values))

    def record_many(self, session: Session, items: Sequence[tuple[Context, AuditEntry]]) -> None:
        """``record`` for many entries at once, inserted in one statement (the group-commit
        writer's way: no ORM object per record). Same chain, same hashes."""
        if not items:
            return
        if not isinstance(self._sink, DatabaseAuditSink):
            for ctx, entry in items:
                self.record(session, ctx, entry)
            return
        tip = self._chain_tip(session)
        rows = []
        if tip[0] == 0:
            opening = self._opening(session)
            rows.append(opening)
            tip = (1, opening["hash"], opening["occurred_at"])
        for ctx, entry in items:
            values = self._values(ctx, entry, tip)
            tip = (values["chain_seq"], values["hash"], values["occurred_at"])
            rows.append(values)
        # Pending before the insert: should it fail (a collision in the chain), the head is
        # read back from the database before the next record.
        session.info[_PENDING] = (self, tip)
        session.execute(insert(AuditEvent), rows)
        session.info[_AUDITED] = True

    def head_ready(self) -> bool:
        """Whether ``follow_head`` can append now (the head is known, the chain is open)."""
        return self._head_known and self._head[0] != 0 and isinstance(self._sink, DatabaseAuditSink)

    def follow_head(
        self, items: Sequence[tuple[Context, AuditEntry]]
    ) -> tuple[list[dict[str, Any]], Tip] | None:
        """The rows of ``items`` appended after the chain's head, and the tip they make, when
        the head is known and the chain is open; None otherwise (``record_many`` in a
        session then reads the head back or opens the chain). The caller holds
        ``Database.write_lock``, inserts the rows, commits, and then calls ``advance``."""
        if not self.head_ready():
            return None
        tip = self._head
        rows = []
        for ctx, entry in items:
            values = self._values(ctx, entry, tip)
            tip = (values["chain_seq"], values["hash"], values["occurred_at"])
            rows.append(values)
        return rows, tip

    def advance(self, tip: Tip | None) -> None:
        """After a commit of rows from ``follow_head``: the chain now ends at ``tip``. None:
        the commit's outcome is unknown, so the next record reads the head back first."""
        if tip is None:
            self._head_known = False
        else:
            self._head = tip

    def _chain_tip(self, session: Session) -> Tip:
        """The record the next one follows: this transaction's last, else the head."""
        pending = session.info.get(_PENDING)
        if pending is None and not self._head_known:
            with session.no_autoflush:  # the caller's pending change flushes with its record
                seq, digest, at, mac = self._stored_head(session)
            if seq and not mac_matches(self.signing_keys()[1], digest, mac):
                # Someone without the key appended to this chain (the last write collided
                # with it): never build on their record; a new, signed chain starts.
                log.error(
                    "audit chain extended by a record its writer did not write; a new chain starts",
                    chain=self.chain_id,
                    chain_seq=seq,
                )
                self.chain_id = new_chain_id()
                self._head = (0, GENESIS, None)
            else:
                self._head = (seq, digest, at)
            self._head_known = True
        tip: Tip = pending[1] if pending is not None else self._head
        return tip

    def signing_keys(self) -> tuple[Ed25519PrivateKey, bytes]:
        """The signing key and the MAC key derived from it, read once per process."""
        if self._keys is None:
            with self._keys_lock:
                if self._keys is None:
                    private = self.key()
                    self._keys = (private, signing.mac_key(private))
        return self._keys

    def _opening(self, session: Session) -> dict[str, Any]:
        """The signed ``audit.chain.open`` record that starts this chain, naming the last
        checkpoint stored now."""
        private, _ = self.signing_keys()
        with session.no_autoflush:  # the caller's pending change flushes with its record
            last = session.scalars(
                select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1)
            ).first()
        after = None
        if last is not None:
            after = {"to_seq": last.to_seq, "digest": checkpoint_digest(checkpoint_fields(last))}
        now = self._clock.now()
        entry = AuditEntry(
            action=anchor.OPEN_ACTION,
            resource_type="audit_chain",
            resource_id=self.chain_id,
            details=anchor.opening_details(private, self.chain_id, now, after),
        )
        return self._values(OPENING_CTX, entry, (0, GENESIS, None), at=now)

    def _values(
        self, ctx: Context, entry: AuditEntry, tip: Tip, *, at: datetime | None = None
    ) -> dict[str, Any]:
        """The columns of the record after ``tip``: hash and MAC included, dated now (never
        before ``tip``)."""
        seq, prev, floor = tip
        now = at or self._clock.now()
        actor = ctx.actor
        values: dict[str, Any] = {
            "chain_id": self.chain_id,
            "chain_seq": seq + 1,
            "prev_hash": prev,
            "occurred_at": now if floor is None or now >= floor else floor,
            "actor_id": actor.user_id if actor else None,
            "actor_name": actor.username if actor else None,
            "actor_role": actor.role if actor else None,
            "auth_method": actor.auth_method if actor else None,
            "action": entry.action,
            "resource_type": entry.resource_type,
            "resource_id": entry.resource_id,
            "patient_ref": entry.patient_ref,
            "outcome": entry.outcome.value,
            "reason": entry.reason[:500] if entry.reason else None,
            "source_ip": ctx.origin.source_ip,
            "user_agent": (ctx.origin.user_agent or "")[:256] or None,
            "request_id": ctx.origin.request_id,
            "details": json.dumps(entry.details, sort_keys=True, default=str)
            if entry.details
            else None,
        }
        values["hash"] = record_hash(values)
        values["mac"] = record_mac(self.signing_keys()[1], values["hash"])
        return values

    def _stored_head(self, session: Session) -> tuple[int, str, datetime | None, str | None]:
        """The chain's last stored record: chain_seq, hash, time and MAC."""
        row = session.execute(
            select(AuditEvent.chain_seq, AuditEvent.hash, AuditEvent.occurred_at, AuditEvent.mac)
            .where(AuditEvent.chain_id == self.chain_id)
            .order_by(AuditEvent.chain_seq.desc())
            .limit(1)
        ).first()
        if row is None:
            return (0, GENESIS, None, None)
        return (int(row[0]), str(row[1]), row[2], row[3])

    def record_alone(self, ctx: Context, entry: AuditEntry) -> None:
        """Write one record that belongs to no change (a refusal, a failure, a break-glass
        use), batched with others by the group-commit writer; returns once it is durable."""
        if self.db.in_write_transaction():
            msg = "record_alone inside a write transaction would deadlock: use record()"
            raise RuntimeError(msg)
        self.writer.submit(ctx, entry)

    def close(self) -> None:
        self.writer.close()

    def search(
        self, query: AuditQuery | None = None, *, limit: int = 100, before: int | None = None
    ) -> AuditPage:
        """Matching records, newest first, at most ``limit``, older than sequence ``before``."""
        statement = self._filtered(query or AuditQuery()).order_by(AuditEvent.seq.desc())
        if before is not None:
            statement = statement.where(AuditEvent.seq < before)
        with self.db.session() as session:
            rows = list(session.scalars(statement.limit(limit + 1)))
        more = len(rows) > limit
        rows = rows[:limit]
        return AuditPage(
            events=[to_out(row) for row in rows],
            next_before=rows[-1].seq if more and rows else None,
        )

    def iterate(
        self, query: AuditQuery | None = None, *, batch: int = 1000
    ) -> Iterator[AuditEventOut]:
        """Every matching record, oldest first, read in batches (for exports of any size)."""
        after = 0
        while True:
            statement = (
                self._filtered(query or AuditQuery())
                .where(AuditEvent.seq > after)
                .order_by(AuditEvent.seq)
                .limit(batch)
            )
            with self.db.session() as session:
                rows = list(session.scalars(statement))
            yield from (to_out(row) for row in rows)
            if len(rows) < batch:
                return
            after = rows[-1].seq

    @staticmethod
    def _filtered(query: AuditQuery) -> Select[AuditEvent]:
        statement = select(AuditEvent)
        equal = {
            AuditEvent.actor_name: query.actor,
            AuditEvent.action: query.action,
            AuditEvent.resource_type: query.resource_type,
            AuditEvent.resource_id: query.resource_id,
            AuditEvent.patient_ref: query.patient_ref,
            AuditEvent.outcome: query.outcome,
        }
        for column, value in equal.items():
            if value is not None:
                statement = statement.where(column == value)
        if query.since is not None:
            statement = statement.where(AuditEvent.occurred_at >= query.since)
        if query.until is not None:
            statement = statement.where(AuditEvent.occurred_at < query.until)
        return statement


def to_out(row: AuditEvent) -> AuditEventOut:
    return AuditEventOut(
        seq=row.seq,
        occurred_at=row.occurred_at,
        actor_id=row.actor_id,
        actor_name=row.actor_name,
        actor_role=row.actor_role,
        auth_method=row.auth_method,
        action=row.action,
        resource_type=row.resource_type,
        resource_id=row.resource_id,
        patient_ref=row.patient_ref,
        outcome=row.outcome,
        reason=row.reason,
        source_ip=row.source_ip,
        user_agent=row.user_agent,
        request_id=row.request_id,
        details=json.loads(row.details) if row.details else None,
    )
