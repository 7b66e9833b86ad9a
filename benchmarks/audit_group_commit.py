# ruff: noqa: T201
"""Audit records that stand alone: one transaction each versus the group-commit writer.

Both write the same records (hash-chained, durable before returning) from N threads into the
same kind of database; the naive way commits (and fsyncs) once per record, the writer once per
batch. Run: .venv/bin/python benchmarks/audit_group_commit.py [records] [threads] [runs]
Set MEDOPS_BENCH_POSTGRES_URL (an admin URL) to add a PostgreSQL run.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg

from medops.audit.schemas import AuditEntry
from medops.config import Settings
from medops.context import SYSTEM_ACTOR, Context, Origin
from medops.db import migrate
from medops.db.engine import Database
from medops.services import Services, build_services

CTX = Context(actor=SYSTEM_ACTOR, origin=Origin(source_ip="bench"))


def naive(services: Services, entry: AuditEntry) -> None:
    with services.db.transaction() as session:
        services.audit.record(session, CTX, entry)


def grouped(services: Services, entry: AuditEntry) -> None:
    services.audit.record_alone(CTX, entry)


def run(
    url: str, write: Callable[[Services, AuditEntry], None], records: int, threads: int
) -> float:
    database = Database(url)
    migrate.upgrade(database)
    database.dispose()
    with tempfile.TemporaryDirectory() as home:
        services = build_services(Settings(home=Path(home), database_url=url))
        per_thread = records // threads

        def work(n: int) -> None:
            for i in range(per_thread):
                write(services, AuditEntry(action="bench.write", resource_id=f"{n}-{i}"))

        pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
        started = time.perf_counter()
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        elapsed = time.perf_counter() - started
        services.close()
    return per_thread * threads / elapsed


def main(records: int, threads: int, runs: int) -> None:
    backends: list[tuple[str, Callable[[], str]]] = []
    folder = Path(tempfile.mkdtemp())
    backends.append(("sqlite", lambda: f"sqlite:///{folder / uuid.uuid4().hex}.db"))
    admin = os.environ.get("MEDOPS_BENCH_POSTGRES_URL")
    created: list[str] = []
    if admin:

        def pg() -> str:
            name = f"medops_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
            created.append(name)
            return (
                admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
                + "/"
                + name
            )

        backends.append(("postgresql", pg))
    for backend, fresh in backends:
        results = {"one commit per record": [], "group commit": []}
        for _ in range(runs):
            results["one commit per record"].append(run(fresh(), naive, records, threads))
            results["group commit"].append(run(fresh(), grouped, records, threads))
        medians = {k: statistics.median(v) for k, v in results.items()}
        for label, value in medians.items():
            print(f"{backend:10s} {label:22s} {value:9.0f} records/s (median of {runs})")
        ratio = medians["group commit"] / medians["one commit per record"]
        print(f"{backend:10s} group commit / one commit per record: {ratio:.1f}x")
    if admin:
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in created:
                conn.execute(f"DROP DATABASE {name} WITH (FORCE)")  # type: ignore[arg-type]


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    main(*(args + [2000, 8, 3][len(args) :]))
