"""Refused unauthenticated requests, counted: one audit record per client address, reason and
minute, instead of one per request.

A client without credentials can send refusals as fast as the network allows; recording each
one would let it fill the audit trail (and the disk) at that rate. The tally counts them in
memory by (minute, address, reason) and writes each minute's counts as ``auth.refused``
records (with the count, the minute, and the routes tried) once the minute has closed: when
the next refusal arrives after it, at the server's housekeeping tick (every 5 s), and at
shutdown (then the open minute too). A count whose write fails is kept and written with the
next one, so none is lost while the process lives. Refusals of an authenticated caller (403)
are not counted here: each keeps its own record.

Memory is bounded: past ``max_keys`` distinct (address, reason) pairs in a minute, further
addresses are counted together under the address ``other``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from medops.audit.schemas import AuditEntry, Outcome
from medops.clock import Clock
from medops.context import Context, Origin
from medops.logs import get_logger

if TYPE_CHECKING:
    from medops.audit.service import AuditService

log = get_logger("medops.audit.refusals")

ACTION = "auth.refused"
MINUTE = timedelta(minutes=1)
MAX_ROUTES = 20
OTHER = "other"


@dataclass
class _Count:
    count: int = 0
    user_agent: str | None = None
    routes: dict[str, int] = field(default_factory=dict)

    def merge(self, other: _Count) -> None:
        self.count += other.count
        self.user_agent = self.user_agent or other.user_agent
        for route, n in other.routes.items():
            self._add_route(route, n)

    def _add_route(self, route: str, n: int) -> None:
        if route in self.routes or len(self.routes) < MAX_ROUTES:
            self.routes[route] = self.routes.get(route, 0) + n
        else:
            self.routes[OTHER] = self.routes.get(OTHER, 0) + n


Key = tuple[datetime, str, str]  # (minute, address, reason)


class RefusalTally:
    """Counts refused unauthenticated requests and writes them as one record per minute."""

    def __init__(self, audit: AuditService, clock: Clock, *, max_keys: int = 10_000) -> None:
        self._audit = audit
        self._clock = clock
        self._max_keys = max_keys
        self._lock = threading.Lock()
        self._counts: dict[Key, _Count] = {}
        self._oldest: datetime | None = None

    def count(self, origin: Origin, route: str, reason: str) -> None:
        """Count one refusal; writes the minutes that have closed (call outside a write
        transaction, as for ``AuditService.record_alone``)."""
        now = self._clock.now()
        minute = _minute(now)
        address = origin.source_ip or "unknown"
        with self._lock:
            key = (minute, address, reason[:500])
            if key not in self._counts and len(self._counts) >= self._max_keys:
                key = (minute, OTHER, reason[:500])
            entry = self._counts.setdefault(key, _Count(user_agent=origin.user_agent))
            entry.count += 1
            entry._add_route(route, 1)
            self._oldest = minute if self._oldest is None else min(self._oldest, minute)
            closed = self._oldest < minute
        if closed:
            self.flush()

    def pending(self) -> int:
        """Refusals counted and not yet written."""
        with self._lock:
            return sum(c.count for c in self._counts.values())

    def flush(self, *, everything: bool = False) -> int:
        """Write the counts of closed minutes (``everything``: the open one too, at shutdown);
        returns how many records were written. On failure the counts stay for the next try."""
        now_minute = _minute(self._clock.now())
        with self._lock:
            due = {k: v for k, v in self._counts.items() if everything or k[0] < now_minute}
            for key in due:
                del self._counts[key]
            self._oldest = min((k[0] for k in self._counts), default=None)
        if not due:
            return 0
        items = [(self._context(key, c), self._entry(key, c)) for key, c in sorted(due.items())]
        try:
            with self._audit.db.transaction() as session:
                self._audit.record_many(session, items)
        except Exception:
            log.exception(
                "refused requests could not be audited; kept for the next try", records=len(items)
            )
            with self._lock:
                for key, c in due.items():
                    self._counts.setdefault(key, _Count()).merge(c)
                self._oldest = min((k[0] for k in self._counts), default=None)
            return 0
        return len(items)

    @staticmethod
    def _context(key: Key, c: _Count) -> Context:
        return Context(actor=None, origin=Origin(source_ip=key[1], user_agent=c.user_agent))

    @staticmethod
    def _entry(key: Key, c: _Count) -> AuditEntry:
        minute, _address, reason = key
        return AuditEntry(
            action=ACTION,
            outcome=Outcome.DENIED,
            resource_type="route",
            reason=reason,
            details={
                "count": c.count,
                "minute": minute.isoformat(),
                "routes": dict(sorted(c.routes.items())),
            },
        )


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)
