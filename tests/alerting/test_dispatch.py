"""The dispatcher over the outbox: claims, sending, retries with backoff, dead rows, and one
sender per row across replicas (three OS processes on PostgreSQL)."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from medops.alerting.dispatch import CLAIM_SECONDS, Dispatcher, backoff
from medops.alerting.links import Links
from medops.alerting.receivers import Receiver, Secrets, build
from medops.alerting.receivers.base import HTTP_TIMEOUT_SECONDS
from medops.alerting.records import DispatchSummary
from medops.alerting.schemas import NotificationPayload, ReceiverConfig
from medops.alerting.tables import AlertNotification
from medops.audit.service import exempt_from_audit_guard
from medops.audit.tables import AuditEvent
from medops.services import Services
from medops.testing import FixedClock
from tests.helpers.notify_outbox import HOOK_KEY, dispatcher, hook, queue, rows
from tests.helpers.notify_peers import HttpPeer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def hook_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDOPS_ALERT_SECRET_OPS_HOOK", HOOK_KEY)


def peer_for(clock: FixedClock) -> HttpPeer:
    return HttpPeer(key=HOOK_KEY.encode(), now=clock.now())


def test_backoff_doubles_from_thirty_seconds_up_to_an_hour() -> None:
    """30 s, 60 s, 120 s ... capped at 3600 s."""
    assert [backoff(n).total_seconds() for n in range(1, 10)] == [
        30, 60, 120, 240, 480, 960, 1920, 3600, 3600,
    ]  # fmt: skip


def test_due_rows_are_sent_once_and_marked_sent_and_audited(
    services: Services, clock: FixedClock
) -> None:
    """Each queued row reaches the HMAC-checking peer once, then is sent (attempts 1,
    sent_at now, claim released); a second run sends nothing; alert.notification.sent is
    audited per row."""
    ids = queue(services.db, clock.now(), 3)
    with peer_for(clock) as peer:
        first = dispatcher(services, [hook(peer.url)], "r1").run_once()
        again = dispatcher(services, [hook(peer.url)], "r1").run_once()
    assert (first.claimed, first.sent, first.failed) == (3, 3, 0)
    assert again.claimed == 0
    assert sorted(r.headers["idempotency-key"] for r in peer.received) == sorted(ids)
    assert not peer.refused
    for row in rows(services.db).values():
        assert (row.status, row.attempts, row.sent_at, row.claimed_until) == (
            "sent", 1, clock.now(), None,
        )  # fmt: skip
    with services.db.session() as session:
        actions = Counter(e.action for e in session.query(AuditEvent).all())
    assert actions["alert.notification.sent"] == 3


def test_rows_not_yet_due_or_claimed_by_a_live_replica_are_left_alone(
    services: Services, clock: FixedClock
) -> None:
    """A row due later is not sent; a row another replica claimed is skipped until its
    claim lapses, then sent."""
    (later,) = queue(services.db, clock.now() + timedelta(minutes=5), 1)
    (claimed,) = queue(services.db, clock.now(), 1)
    with services.db.transaction() as session:
        exempt_from_audit_guard(session)  # another replica's claim
        row = session.get(AlertNotification, claimed)
        assert row is not None
        row.claimed_by, row.claimed_until = "other", clock.now() + timedelta(seconds=60)
    with peer_for(clock) as peer:
        summary = dispatcher(services, [hook(peer.url)], "r1").run_once()
        assert (summary.claimed, summary.sent) == (0, 0)
        clock.advance(timedelta(seconds=61))
        peer.now = clock.now()
        summary = dispatcher(services, [hook(peer.url)], "r1").run_once()
        assert summary.sent == 1
        assert [r.headers["idempotency-key"] for r in peer.received] == [claimed]
    assert rows(services.db)[later].status == "queued"


def test_a_receiver_down_for_an_hour_gets_every_notification_exactly_once_when_back(
    services: Services, clock: FixedClock
) -> None:
    """The peer answers 503 for an hour (the dispatcher runs every 10 s of the injected
    clock); rows back off and stay queued; when it is back, each row arrives once."""
    ids = queue(services.db, clock.now(), 5)
    worker_receivers = []
    with peer_for(clock) as peer:
        worker_receivers.append(hook(peer.url))
        worker = dispatcher(services, worker_receivers, "r1")
        peer.status = 503
        start = clock.now()
        while clock.now() < start + timedelta(hours=1):
            worker.run_once()
            clock.advance(timedelta(seconds=10))
        down = rows(services.db)
        assert {r.status for r in down.values()} == {"queued"}
        assert all(
            r.attempts == 7 for r in down.values()
        )  # at 0, 30 s, 1.5, 3.5, 7.5, 15.5, 31.5 min
        assert all(r.last_error == f"{peer.url}: answered 503" for r in down.values())
        assert not peer.received
        peer.status = 200
        while any(r.status == "queued" for r in rows(services.db).values()):
            peer.now = clock.now()
            worker.run_once()
            clock.advance(timedelta(seconds=10))
            assert clock.now() < start + timedelta(hours=3)
    keys = Counter(r.headers["idempotency-key"] for r in peer.received)
    assert sorted(keys) == sorted(ids)
    assert set(keys.values()) == {1}
    assert {r.status for r in rows(services.db).values()} == {"sent"}


def test_a_receiver_that_keeps_failing_shows_in_the_outbox_and_its_rows_die(
    services: Services, clock: FixedClock
) -> None:
    """After max_attempts the row is dead with attempts and last_error (no secret, no
    payload): what the receiver_failing signal reads; alert.notification.dead is audited."""
    (row_id,) = queue(services.db, clock.now(), 1)
    with HttpPeer(status=500) as peer:
        worker = dispatcher(services, [hook(peer.url + "/p?token=SECRET", max_attempts=3)], "r1")
        outcomes = []
        for _ in range(3):
            summary = worker.run_once()
            outcomes.append((summary.failed, summary.dead))
            clock.advance(timedelta(hours=1))
    assert outcomes == [(1, 0), (1, 0), (0, 1)]
    row = rows(services.db)[row_id]
    assert (row.status, row.attempts) == ("dead", 3)
    assert row.last_error == f"{peer.url}: answered 500"
    assert "SECRET" not in (row.last_error or "")
    assert "AccuracyDrop" not in (row.last_error or "")


def test_a_row_for_an_unknown_receiver_fails_with_a_clear_error(
    services: Services, clock: FixedClock
) -> None:
    """The routing no longer names the row's receiver: a failed attempt saying so."""
    (row_id,) = queue(services.db, clock.now(), 1, receiver="gone")
    summary = dispatcher(services, [], "r1").run_once()
    assert summary.failed == 1
    assert rows(services.db)[row_id].last_error == "receiver 'gone' is not configured"


def test_a_claim_outlives_any_send() -> None:
    """Claims last longer than the receivers' timeouts, so no second replica takes a row
    that is still being sent."""
    assert CLAIM_SECONDS > 4 * HTTP_TIMEOUT_SECONDS


def test_a_batch_slower_than_a_claim_claims_each_row_when_it_reaches_it(
    services: Services, clock: FixedClock
) -> None:
    """Each send of r1's batch takes longer than a claim lasts. A second replica dispatching
    while r1 sends its second row finds that row claimed (r1 claimed it at the clock's time
    of the claim, not of the batch's start, whose claim would have lapsed): each row reaches
    the peer once."""
    queue(services.db, clock.now(), 2)
    during: list[DispatchSummary] = []
    sends: list[str] = []
    with peer_for(clock) as peer:

        def slow(config: ReceiverConfig, secrets: Secrets) -> Receiver:
            receiver = build(config, secrets)

            class Slow:
                def send(self, payload: NotificationPayload, links: Links) -> None:
                    sends.append(config.name)
                    if len(sends) == 2:  # r2's pass while r1 sends its second row
                        during.append(dispatcher(services, [hook(peer.url)], "r2").run_once())
                    receiver.send(payload, links)
                    clock.advance(timedelta(seconds=CLAIM_SECONDS + 1))
                    peer.now = clock.now()

            return Slow()

        r1 = Dispatcher(
            services.db, services.clock, services.audit, services.settings,
            lambda: [hook(peer.url)], holder="r1", factory=slow,
        )  # fmt: skip
        first = r1.run_once()
    assert (first.claimed, first.sent) == (2, 2)
    assert during[0].claimed == 0
    keys = Counter(r.headers["idempotency-key"] for r in peer.received)
    assert sorted(keys.values()) == [1, 1]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # SQLite: one process
def test_three_replica_processes_on_postgresql_send_each_notification_exactly_once(
    services: Services, db_url: str, tmp_path: Path
) -> None:
    """Three OS processes, each with its own services on the same PostgreSQL database, run
    the dispatcher over the same 60 queued rows; the receiver gets each exactly once."""
    ids = queue(services.db, services.clock.now(), 60)
    go = tmp_path / "go"
    with HttpPeer(delay=0.01) as peer:
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.helpers.dispatch_worker",
                    db_url,
                    str(services.settings.home),
                    peer.url,
                    str(go),
                ],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        go.touch()
        outputs = [w.communicate(timeout=120) for w in workers]
    for worker, (_out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err[-3000:]
    sent = [int(out.strip().splitlines()[-1]) for out, _ in outputs]
    keys = Counter(r.headers["idempotency-key"] for r in peer.received)
    assert sorted(keys) == sorted(ids)
    assert set(keys.values()) == {1}, "a notification was sent twice"
    assert sum(sent) == 60
    assert sum(1 for n in sent if n > 0) >= 2, f"the replicas did not overlap: {sent}"
    assert {r.status for r in rows(services.db).values()} == {"sent"}
