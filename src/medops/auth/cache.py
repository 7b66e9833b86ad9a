"""A short-lived, in-process cache of the rows that stand behind a token.

Checking a token costs two queries; at serving rates that is most of a request's time. The
cache keeps, per token digest, the token and user rows and the user's break-glass grants for
at most ``MEDOPS_AUTH_CACHE_SECONDS`` (0 turns it off). Only what the database said is cached;
every decision (expiry, idle time, CSRF, grants still running) is made again on each request
with the current time, and a refusal is always confirmed against the database.

* A change made by this process to users, tokens or grants (revocation, logout, disabling, a
  role change, a grant) empties the cache when its transaction commits, so it applies to the
  very next request. ``watch_auth_changes`` hooks the session factory for that: ORM objects
  flushed and bulk ``UPDATE``/``DELETE``/``INSERT`` statements on those tables both count.
* A change made by another process (another replica, the CLI on the same SQLite file) applies
  within ``MEDOPS_AUTH_CACHE_SECONDS``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from medops.auth.tables import ApiToken, BreakGlassGrant, User
from medops.clock import Clock
from medops.core.permissions import Permission

_CHANGED = "medops.auth_changed"
BOOKKEEPING = "medops.auth_bookkeeping"
_WATCHED = (ApiToken, User, BreakGlassGrant)
MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class AuthEntry:
    """What the database said about one token, when this process last asked."""

    token: ApiToken
    user: User
    grants: tuple[tuple[Permission, datetime], ...]
    last_used_at: datetime | None
    loaded: float
    generation: int


class AuthCache:
    """Token digest -> AuthEntry, for ``seconds`` at most, emptied on local changes."""

    def __init__(self, seconds: float, clock: Clock) -> None:
        self.seconds = seconds
        self._clock = clock
        self._entries: dict[str, AuthEntry] = {}
        self._lock = threading.Lock()
        self.generation = 0

    def stamp(self) -> float:
        """The time an entry loaded now carries (the injected clock, in seconds)."""
        return self._clock.now().timestamp()

    def age(self, entry: AuthEntry) -> float:
        """Seconds since ``entry`` was loaded (negative if the clock went back: a reload)."""
        age = self.stamp() - entry.loaded
        return age if age >= 0 else self.seconds

    def get(self, digest: str) -> AuthEntry | None:
        if self.seconds <= 0:
            return None
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry.generation != self.generation or self.age(entry) >= self.seconds:
            self._entries.pop(digest, None)
            return None
        return entry

    def put(self, digest: str, entry: AuthEntry) -> None:
        """Keep ``entry`` unless something changed since it was read (its generation)."""
        if self.seconds <= 0:
            return
        with self._lock:
            if entry.generation != self.generation:
                return
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[digest] = entry

    def invalidate(self) -> None:
        with self._lock:
            self.generation += 1
            self._entries.clear()


def watch_auth_changes(factory: sessionmaker[Session], cache: AuthCache) -> None:
    """Empty ``cache`` after every commit that changed users, tokens or grants."""

    @event.listens_for(factory, "before_flush")
    def _flushed(session: Session, _context: Any, _instances: Any) -> None:
        if any(
            isinstance(obj, _WATCHED) for obj in [*session.new, *session.dirty, *session.deleted]
        ):
            session.info[_CHANGED] = True

    @event.listens_for(factory, "do_orm_execute")
    def _executed(state: ORMExecuteState) -> None:
        if not (state.is_update or state.is_delete or state.is_insert):
            return
        if state.session.info.get(BOOKKEEPING):
            return
        if any(m.class_ in _WATCHED for m in state.all_mappers):
            state.session.info[_CHANGED] = True

    @event.listens_for(factory, "after_commit")
    def _committed(session: Session) -> None:
        if session.info.pop(_CHANGED, False):
            cache.invalidate()

    @event.listens_for(factory, "after_transaction_end")
    def _ended(session: Session, transaction: Any) -> None:
        if transaction.parent is None:
            session.info.pop(_CHANGED, None)
            session.info.pop(BOOKKEEPING, None)
