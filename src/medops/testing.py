"""Helpers for tests, ours and users': a clock you control and a view of new audit records.

Use them instead of mocks: inject ``FixedClock`` into ``build_services`` and read what was
audited with ``capture_audit``; inject ``FAST_PASSWORD_HASHING`` into a test suite's
``build_services`` so that making a user costs microseconds instead of OWASP's ~20-60 ms.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from medops.audit.schemas import AuditEventOut
from medops.audit.service import to_out
from medops.audit.tables import AuditEvent
from medops.auth.passwords import PasswordHashing
from medops.services import Services

# argon2id at its smallest costs (1 pass, 8 KiB): the same algorithm and code path as an
# installation's OWASP costs, for test suites that create users by the thousand. Never for
# an installation (build_services uses OWASP's costs unless given this).
FAST_PASSWORD_HASHING = PasswordHashing(time_cost=1, memory_kib=8)


class FixedClock:
    """A clock that stands still until told to move."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        if self._now.tzinfo is None:
            msg = "FixedClock needs a timezone-aware start time"
            raise ValueError(msg)

    def now(self) -> datetime:
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Waiting on a fixed clock moves it forward by ``seconds`` at once (concurrent
        sleepers each move it), so a test sees a delay without spending it."""
        self._now += timedelta(seconds=seconds)

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by ``delta``."""
        self._now += delta

    def set(self, when: datetime) -> None:
        self._now = when


class CapturedAudit:
    """The audit records written since the capture began, oldest first."""

    def __init__(self) -> None:
        self.events: list[AuditEventOut] = []

    def actions(self) -> list[str]:
        return [e.action for e in self.events]

    def find(self, action: str) -> list[AuditEventOut]:
        return [e for e in self.events if e.action == action]


@contextmanager
def capture_audit(services: Services) -> Iterator[CapturedAudit]:
    """Collect the audit records written inside the ``with`` block (filled in on exit)."""
    captured = CapturedAudit()
    with services.db.session() as session:
        start = session.scalar(select(func.coalesce(func.max(AuditEvent.seq), 0))) or 0
    try:
        yield captured
    finally:
        with services.db.session() as session:
            rows = session.scalars(
                select(AuditEvent).where(AuditEvent.seq > start).order_by(AuditEvent.seq)
            )
            captured.events = [to_out(row) for row in rows]
