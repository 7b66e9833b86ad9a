"""``Leader``: one process's side of a periodic job's lease. One leader at a time (also when
several processes race for it on PostgreSQL), the job passes on when the leader stops renewing
(a killed replica), and each run is counted."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from medops.db.engine import Database
from medops.jobs import LEASE_GRACE, Leader, process_holder

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
PERIOD = 10.0


def test_the_leader_keeps_the_job_while_it_renews_and_another_takes_it_when_it_stops(
    db_url: str,
) -> None:
    """a leads and renews each period: b never leads meanwhile; a stops (killed): b is
    refused until two periods and the grace after a's last turn, then leads; a, back, does
    not."""
    database = Database(db_url)
    try:
        a = Leader(database, "monitoring.run", "a", PERIOD)
        b = Leader(database, "monitoring.run", "b", PERIOD)
        turns = [(a.turn(T0 + timedelta(seconds=PERIOD * n)), b.turn(T0 + timedelta(
            seconds=PERIOD * n + 1))) for n in range(5)]  # fmt: skip
        assert turns == [(True, False)] * 5
        last = T0 + timedelta(seconds=PERIOD * 4)
        lapse = last + timedelta(seconds=2 * PERIOD + LEASE_GRACE)
        assert not b.turn(lapse - timedelta(seconds=1))
        assert b.turn(lapse)
        assert (a.leading, b.leading) == (True, True)  # a has not looked since
        assert not a.turn(lapse + timedelta(seconds=1))
        assert not a.leading
    finally:
        database.dispose()


def test_runs_are_counted_per_leader(db_url: str) -> None:
    database = Database(db_url)
    try:
        leader = Leader(database, "alerts.evaluate", "a", PERIOD)
        for n in range(3):
            if leader.turn(T0 + timedelta(seconds=PERIOD * n)):
                leader.ran()
        assert leader.runs == 3
    finally:
        database.dispose()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # SQLite: one writer
def test_eight_replicas_racing_for_a_free_lease_on_postgresql_elect_one(db_url: str) -> None:
    """Eight holders, each with its own connection pool, turn at the same instant, first on
    a lease nobody holds yet (the INSERT race), then on one that just expired (the UPDATE
    race): one leads each time."""
    databases = [Database(db_url) for _ in range(8)]
    try:
        leaders = [
            Leader(db, "audit.checkpoint", f"r{n}", PERIOD) for n, db in enumerate(databases)
        ]

        def race(now: datetime) -> list[bool]:
            with ThreadPoolExecutor(len(leaders)) as pool:
                return list(pool.map(lambda leader: leader.turn(now), leaders))

        first = race(T0)
        assert first.count(True) == 1
        second = race(T0 + timedelta(seconds=2 * PERIOD + LEASE_GRACE))
        assert second.count(True) == 1
    finally:
        for db in databases:
            db.dispose()


def test_holders_differ_per_process_and_services() -> None:
    one, two = object(), object()
    assert process_holder(one) != process_holder(two)
    assert len(process_holder(one)) <= 128
