"""A lease per background job, so a job runs once per tick across server replicas.

``job_leases`` holds one row per job name: who holds it and until when. ``Lease.acquire``
takes it by one conditional statement: an INSERT when no row exists (the primary key lets one
of two concurrent first acquirers in), else an UPDATE that succeeds only if the lease is free
(expired) or already the caller's. The database decides, on PostgreSQL and SQLite alike; no
advisory lock or clock agreement beyond the injected ``now`` is needed. A holder that dies
loses its lease when ``until`` passes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import String, or_, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, mapped_column

from medops.audit.service import exempt_from_audit_guard
from medops.db.base import Base, UTCDateTime
from medops.db.engine import Database


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
