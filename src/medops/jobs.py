"""A lease per background job, so a job runs once per tick across server replicas.

``job_leases`` holds one row per job name: who holds it and until when. ``Lease.acquire``
takes it by one conditional statement: an INSERT when no row exists (the primary key lets one
of two concurrent first acquirers in), else an UPDATE that succeeds only if the lease is free
(expired) or already the caller's. The database decides, on PostgreSQL and SQLite alike; no
advisory lock or clock agreement beyond the injected ``now`` is needed. A holder that dies
loses its lease when ``until`` passes.

``Leader`` is one process's side of a lease for a periodic job: the server's loops call
``Leader.turn(now)`` each period (and again after a run) and run the job only when it
answers True. Its lease lasts two periods plus LEASE_GRACE seconds (a holder slowed by load
keeps its job) and is extended at every turn, so the holder keeps the job while it lives and
another replica takes it over, at its next turn, once the lease has passed without the
holder's renewal (a killed leader: within three periods plus LEASE_GRACE; a leader that stops
cleanly releases its leases, and the next turn of another takes them). Each run and each
change of leader is a log line (``scheduled job ran``, ``job lease taken``): the record of who
ran what, when.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, or_, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, mapped_column

from medops.audit.service import exempt_from_audit_guard
from medops.db.base import Base, UTCDateTime
from medops.db.engine import Database
from medops.logs import get_logger

log = get_logger("medops.jobs")
LEASE_GRACE = 5.0  # seconds a lease outlasts two periods


class JobLease(Base):
    """Who runs the job ``name`` until ``until``."""

    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    until: Mapped[datetime] = mapped_column(UTCDateTime)


class Lease:
    """Acquire and release job leases in ``db``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def acquire(self, name: str, holder: str, seconds: float, now: datetime) -> bool:
        """Take (or extend) the lease of ``name`` for ``seconds`` from ``now``; True when
        ``holder`` holds it afterwards, False when another holder's lease still runs."""
        until = now + timedelta(seconds=seconds)
        insert = sqlite_insert if self._db.dialect == "sqlite" else postgresql_insert
        with self._db.transaction() as session:
            exempt_from_audit_guard(session)  # a lease is bookkeeping, not an action
            inserted = session.execute(
                insert(JobLease)
                .values(name=name, holder=holder, until=until)
                .on_conflict_do_nothing(index_elements=["name"])
                .returning(JobLease.name)
            )
            if inserted.first() is not None:
                return True
            taken = session.execute(
                update(JobLease)
                .where(
                    JobLease.name == name,
                    or_(JobLease.until <= now, JobLease.holder == holder),
                )
                .values(holder=holder, until=until)
                .execution_options(synchronize_session=False)
            )
            return bool(getattr(taken, "rowcount", 0) == 1)

    def release(self, name: str, holder: str, now: datetime) -> None:
        """Give the lease up at once (when ``holder`` has it), so another may take it."""
        with self._db.transaction() as session:
            exempt_from_audit_guard(session)
            session.execute(
                update(JobLease)
                .where(JobLease.name == name, JobLease.holder == holder)
                .values(until=now)
                .execution_options(synchronize_session=False)
            )


def process_holder(owner: object) -> str:
    """A holder name unique to this process and ``owner`` (its services): host, pid, id."""
    return f"{socket.gethostname()[:48]}-{os.getpid()}-{id(owner):x}"


class Leader:
    """This process's claim on the lease of one periodic job (see the module)."""

    def __init__(self, db: Database, name: str, holder: str, period: float) -> None:
        self.lease = Lease(db)
        self.name = name
        self.holder = holder
        self.period = period
        self.leading = False  # whether the last turn answered True
        self.runs = 0  # runs of the job by this process (``ran``)

    def turn(self, now: datetime) -> bool:
        """Take or extend the lease for two periods and LEASE_GRACE from ``now``; True when
        this process holds it (then it runs the job). Logs when this process becomes or stops
        being the job's leader."""
        seconds = 2 * self.period + LEASE_GRACE
        leading = self.lease.acquire(self.name, self.holder, seconds, now)
        if leading != self.leading:
            log.info(
                "job lease taken" if leading else "job lease lost",
                job=self.name,
                holder=self.holder,
            )
        self.leading = leading
        return leading

    def ran(self, **fields: Any) -> None:
        """Record one run of the job by this process (a log line with the job and holder)."""
        self.runs += 1
        log.info("scheduled job ran", job=self.name, holder=self.holder, run=self.runs, **fields)
