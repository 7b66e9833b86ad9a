"""The audit seam: every change commits together with its audit record, or not at all.

``AuditSink`` is the interface the tamper-evident, hash-chained log (its own issue) will fill;
``DatabaseAuditSink`` appends plain rows in the caller's transaction. ``install_audit_guard``
makes the rule structural: a session that flushes a change without an audit record raises.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from sqlalchemy import Select, event, insert, select
from sqlalchemy.orm import Session, sessionmaker

from medops.audit.chain import GENESIS, record_hash
from medops.audit.models import AuditEvent
from medops.audit.schemas import AuditEntry, AuditEventOut, AuditPage, AuditQuery
from medops.audit.writer import GroupCommitWriter
from medops.clock import Clock
from medops.context import Context
from medops.db.engine import Database

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
        chain_id: str | None = None,
    ) -> None:
        self.db = db
        self._clock = clock
        self._sink = sink or DatabaseAuditSink()
        self.chain_id = chain_id or new_chain_id()
        self._head: tuple[int, str] = (0, GENESIS)  # (chain_seq, hash) of the last committed
        self._head_known = True
        self.writer = GroupCommitWriter(self)

    def record(self, session: Session, ctx: Context, entry: AuditEntry) -> None:
        """Append ``entry`` to the caller's transaction: it commits with the change or never.

        The caller holds ``Database.write_lock`` (every ``Database.transaction`` does), so
        this process's chain grows in commit order; the head advances only on commit."""
        seq, prev = self._chain_tip(session)
        record = AuditEvent(**self._values(ctx, entry, seq + 1, prev))
        session.info[_PENDING] = (self, (record.chain_seq, record.hash))
        self._sink.append(session, record)

    def record_many(self, session: Session, items: Sequence[tuple[Context, AuditEntry]]) -> None:
        """``record`` for many entries at once, inserted in one statement (the group-commit
        writer's way: no ORM object per record). Same chain, same hashes."""
        if not items:
            return
        if not isinstance(self._sink, DatabaseAuditSink):
            for ctx, entry in items:
                self.record(session, ctx, entry)
            return
        seq, prev = self._chain_tip(session)
        rows = []
        for ctx, entry in items:
            seq += 1
            values = self._values(ctx, entry, seq, prev)
            prev = values["hash"]
            rows.append(values)
        session.execute(insert(AuditEvent), rows)
        session.info[_AUDITED] = True
        session.info[_PENDING] = (self, (seq, prev))

    def _chain_tip(self, session: Session) -> tuple[int, str]:
        """(chain_seq, hash) the next record follows: this transaction's last, else the head."""
        pending = session.info.get(_PENDING)
        if pending is None and not self._head_known:
            self._head = self._stored_head(session)
            self._head_known = True
        tip: tuple[int, str] = pending[1] if pending is not None else self._head
        return tip

    def _values(self, ctx: Context, entry: AuditEntry, seq: int, prev: str) -> dict[str, Any]:
        """The columns of one audit record, its hash included."""
        actor = ctx.actor
        values: dict[str, Any] = {
            "chain_id": self.chain_id,
            "chain_seq": seq,
            "prev_hash": prev,
            "occurred_at": self._clock.now(),
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
        return values

    def _stored_head(self, session: Session) -> tuple[int, str]:
        row = session.execute(
            select(AuditEvent.chain_seq, AuditEvent.hash)
            .where(AuditEvent.chain_id == self.chain_id)
            .order_by(AuditEvent.chain_seq.desc())
            .limit(1)
        ).first()
        return (int(row[0]), str(row[1])) if row is not None else (0, GENESIS)

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
