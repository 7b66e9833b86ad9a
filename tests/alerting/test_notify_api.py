"""The dispatcher and the outbox over HTTP, the outbox gauge, the signed link's confirm page,
and the CLI functions of ``medops alerts dispatch|notifications``; the whole loop (alert fires,
a webhook carries the signed link, a person confirms it, the alert is acknowledged) where the
alert engine is installed."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy.orm import Session

from medops.alerting.links import LinkClaim, load_key, sign
from medops.alerting.schemas import AlertingConfig, Observation, ReceiverConfig, Route
from medops.alerting.tables import AlertNotification
from medops.context import SYSTEM_ACTOR, Context, Origin
from medops.core.permissions import Role
from medops.services import Services
from medops.testing import FixedClock
from tests.helpers.http import bearer
from tests.helpers.notify_outbox import HOOK_KEY, queue
from tests.helpers.notify_peers import HttpPeer
from tests.helpers.registry import DEPLOYMENT

SYSTEM = Context(actor=SYSTEM_ACTOR, origin=Origin(source_ip="local"))


def token_for(services: Services, alert_id: str, action: str, user: str | None = None) -> str:
    claim = LinkClaim(alert_id, action, services.clock.now() + timedelta(hours=1), user)  # type: ignore[arg-type]
    return sign(load_key(services.settings), claim)


def test_dispatch_over_http_records_failures_in_the_outbox_listing(
    http: httpx.Client, services: Services, clock: FixedClock, tokens: dict[Role, str]
) -> None:
    """POST /api/v1/alerts/dispatch (alerts:run) answers the run's summary; a row whose
    receiver is not configured shows in GET /api/v1/alert-notifications (alerts:read) with
    its attempts and last error, filtered by status."""
    queue(services.db, clock.now(), 2, receiver="nowhere")
    ran = http.post("/api/v1/alerts/dispatch", headers=bearer(tokens[Role.ML_ENGINEER]))
    assert ran.status_code == 200, ran.text
    assert ran.json() == {"claimed": 2, "sent": 0, "failed": 2, "dead": 0, "skipped": 0}
    listed = http.get(
        "/api/v1/alert-notifications", params={"status": "queued"},
        headers=bearer(tokens[Role.CLINICIAN]),
    )  # fmt: skip
    assert listed.status_code == 200, listed.text
    rows = listed.json()
    assert [(r["receiver"], r["attempts"]) for r in rows] == [("nowhere", 1), ("nowhere", 1)]
    assert rows[0]["last_error"] == "receiver 'nowhere' is not configured"
    assert "payload" not in rows[0]
    none = http.get("/api/v1/alert-notifications", params={"status": "dead"},
                    headers=bearer(tokens[Role.CLINICIAN]))  # fmt: skip
    assert none.json() == []


def test_a_bad_status_filter_is_a_problem_naming_the_field(
    http: httpx.Client, tokens: dict[Role, str]
) -> None:
    """status=lost: 422 problem+json naming status."""
    answer = http.get("/api/v1/alert-notifications", params={"status": "lost"},
                      headers=bearer(tokens[Role.AUDITOR]))  # fmt: skip
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert "status" in json.dumps(answer.json()["errors"])


def test_the_outbox_gauge_counts_rows_per_receiver_and_status(
    http: httpx.Client, services: Services, clock: FixedClock
) -> None:
    """/metrics: medops_alert_notifications{receiver,status}."""
    queue(services.db, clock.now(), 3, receiver="ops-hook")
    text = http.get("/metrics").text
    assert 'medops_alert_notifications{receiver="ops-hook",status="queued"} 3.0' in text


def test_the_act_page_refuses_a_forged_expired_or_someone_elses_link(
    http: httpx.Client, services: Services, clock: FixedClock, people: dict[str, dict[str, str]]
) -> None:
    """A token signed with another key or expired: a 422 page saying why; a link made for
    another user: 403; nothing is acknowledged."""
    who = people["clin"]
    forged = sign(b"z" * 32, LinkClaim("a1", "acknowledge", clock.now() + timedelta(hours=1)))
    answer = http.get("/alerts/act", params={"token": forged}, headers=who)
    assert answer.status_code == 422
    assert "bad signature" in answer.text
    old = token_for(services, "a1", "acknowledge")
    clock.advance(timedelta(hours=2))
    answer = http.post("/alerts/act", params={"token": old}, json={}, headers=who)
    assert answer.status_code == 422
    assert "expired" in answer.text
    theirs = token_for(services, "a1", "resolve", user="somebody-else")
    answer = http.get("/alerts/act", params={"token": theirs}, headers=who)
    assert answer.status_code == 403
    assert "another user" in answer.text


# -- the whole loop, with the alert engine ---------------------------------------------------


def test_a_firing_alerts_webhook_link_acknowledges_it_as_the_person_who_confirms(
    http: httpx.Client,
    deployed: dict[str, dict[str, str]],
    services: Services,
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Drift fires an alert; the dispatcher sends it to an HMAC-checking webhook; the link in
    it opens a confirm page (GET changes nothing); POST acknowledges it as the signed-in
    clinician."""
    alerts = getattr(services, "alerts", None)
    if alerts is None:
        pytest.skip("the alert engine (AlertService) is not installed on this branch")
    monkeypatch.setenv("MEDOPS_ALERT_SECRET_OPS_HOOK", HOOK_KEY)

    def drift(_session: Session, _now: datetime) -> list[Observation]:
        return [Observation(signal="drift_detected", deployment=DEPLOYMENT, value=1)]

    alerts.signal_sources[:] = [drift]
    with HttpPeer(key=HOOK_KEY.encode(), now=clock.now()) as peer:
        hook = ReceiverConfig(name="ops-hook", kind="webhook", url=peer.url, secret="ops-hook")
        routing = AlertingConfig(route=Route(receiver="ops-hook"), receivers=[hook],
                                 group_wait_seconds=0)  # fmt: skip
        alerts.set_config(SYSTEM, routing)
        assert http.post("/api/v1/alerts/evaluate", headers=deployed["mle"]).status_code == 200
        sent = http.post("/api/v1/alerts/dispatch", headers=deployed["mle"]).json()
        assert sent["sent"] >= 1, sent
        body = json.loads(peer.received[0].body)
    (fired,) = [a for a in body["alerts"] if a["name"] == "DriftDetected"]
    link = urlsplit(fired["links"]["acknowledge"])
    token = parse_qs(link.query)["token"][0]
    page = http.get("/alerts/act", params={"token": token}, headers=deployed["clin"])
    assert page.status_code == 200, page.text
    assert "Acknowledge this alert" in page.text
    assert alerts.get(fired["id"]).state == "firing"
    done = http.post("/alerts/act", params={"token": token}, json={"note": "looking"},
                     headers=deployed["clin"])  # fmt: skip
    assert done.status_code == 200, done.text
    after = alerts.get(fired["id"])
    assert (after.state, after.acknowledged_by, after.acknowledge_note) == (
        "acknowledged", "user-clinician", "looking",
    )  # fmt: skip
    assert Path(services.settings.alert_link_key_file).exists()


def test_the_server_dispatches_on_its_own_every_few_seconds(
    client_for: Callable[..., tuple[httpx.Client, Services]], clock: FixedClock
) -> None:
    """A running app with MEDOPS_ALERT_DISPATCH_SECONDS=0.1 tries a queued row by itself."""
    _, running = client_for(alert_dispatch_seconds=0.1, monitor_interval_seconds=0)
    (row_id,) = queue(running.db, clock.now(), 1, receiver="nowhere")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with running.db.session() as session:
            row = session.get(AlertNotification, row_id)
            if row is not None and row.attempts > 0:
                break
        time.sleep(0.1)
    assert row is not None
    assert row.attempts >= 1
    assert row.last_error == "receiver 'nowhere' is not configured"
