"""The issue's scripted incident over the service with a fixed clock, on both backends: a
drift and a latency regression on the served deployment; the right teams are told within the
rule's ``for`` plus group_wait; nobody acknowledges, the next level is paged; an
acknowledgement stops escalation; the end sends a resolved notification; the history lists
the incident with who acknowledged it and the notifications sent."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import httpx

from medops.alerting.schemas import Matcher, Route
from medops.audit.service import exempt_from_audit_guard
from medops.services import Services
from medops.serving.tables import ServingUsage
from medops.serving.usage import LATENCY_BOUNDS_MS, bucket_of
from medops.testing import FixedClock
from tests.helpers.alerting import PERSON, Signals, config, outbox
from tests.helpers.registry import DEPLOYMENT

S = timedelta(seconds=1)
M = timedelta(minutes=1)


def _slow(services: Services, start: datetime, minutes: int) -> None:
    counts = [0] * (len(LATENCY_BOUNDS_MS) + 1)
    counts[bucket_of(1500.0)] = 50
    with services.db.transaction() as session:
        exempt_from_audit_guard(session)
        for minute in range(minutes):
            session.add(
                ServingUsage(
                    deployment=DEPLOYMENT, minute=start + minute * M, replica="r1",
                    requests=50, errors=0, shed=0, client_errors=0, records=50,
                    latency=json.dumps(counts), latency_sum_ms=50 * 1500.0, cpu_seconds=1.0,
                    gpu_seconds=0.0, memory_byte_seconds=1.0,
                )
            )  # fmt: skip


def _sent(services: Services) -> list[tuple[str, str, int, str]]:
    """The drift's and the latency's notifications (the SLO burn alerts the slow minutes
    also raise go their own way, as other groups)."""
    return [
        (p.receiver, p.kind, p.level, p.alerts[0].name)
        for _, p in outbox(services)
        if p.alerts[0].name in {"DriftDetected", "LatencyOverSla"}
    ]


def test_drift_and_latency_incident(
    http: httpx.Client,
    deployed: dict[str, dict[str, str]],
    services: Services,
    clock: FixedClock,
) -> None:
    """Data science hears of the drift after group_wait; ops of the latency after for (5 m)
    plus group_wait, with the on-call paged; level 1 ten minutes later; the ack stops it; the
    end is notified; the history shows both alerts."""
    base = config(clock.now(), group_wait=30)
    routes = [
        *base.route.routes,
        Route(matchers=[Matcher(label="team", value="data_science")], receiver="clinical-hook"),
    ]
    services.alerts.set_config(
        PERSON, base.model_copy(update={"route": base.route.model_copy(update={"routes": routes})})
    )
    drift = Signals()
    drift.set("drift_detected", 1, deployment=DEPLOYMENT)
    services.alerts.signal_sources.append(drift)  # the built-in signals stay
    t0 = clock.now().replace(second=0, microsecond=0)
    clock.set(t0)
    _slow(services, t0 - 5 * M, 35)

    services.alerts.evaluate(PERSON)
    assert _sent(services) == []
    clock.advance(30 * S)
    services.alerts.evaluate(PERSON)
    assert _sent(services) == [("clinical-hook", "firing", 0, "DriftDetected")]
    clock.set(t0 + 5 * M)
    services.alerts.evaluate(PERSON)  # LatencyOverSla fires; its group waits 30 s
    assert len(_sent(services)) == 1
    clock.advance(30 * S)
    services.alerts.evaluate(PERSON)
    assert sorted(_sent(services)[1:]) == [
        ("ops-hook", "firing", 0, "LatencyOverSla"),
        ("ops-l1", "firing", 0, "LatencyOverSla"),
    ]
    clock.advance(10 * M)
    services.alerts.evaluate(PERSON)
    assert _sent(services)[-1] == ("ops-l2", "escalation", 1, "LatencyOverSla")
    [latency] = [a for a in services.alerts.list_alerts() if a.name == "LatencyOverSla"]
    answer = http.post(
        f"/api/v1/alerts/{latency.id}/acknowledge",
        json={"note": "scaling out"},
        headers=deployed["mle"],
    )
    assert answer.status_code == 200, answer.text
    count = len(_sent(services))
    clock.advance(10 * M)
    services.alerts.evaluate(PERSON)
    assert len(_sent(services)) == count
    clock.set(t0 + 36 * M)  # the slow minutes are over: latency resolves
    services.alerts.evaluate(PERSON)
    ended = [s for s in _sent(services)[count:] if s[3] == "LatencyOverSla"]
    assert ("ops-hook", "resolved", 0, "LatencyOverSla") in ended
    history = services.alerts.history(DEPLOYMENT, t0 - M, t0 + 60 * M)
    by = {a.name: a for a in history}
    assert by["LatencyOverSla"].acknowledged_by == "user-ml-engineer"
    assert by["LatencyOverSla"].resolved_by == "system"
    # firing to ops-hook and ops-l1, level 1 to ops-l2, and the end to all three
    assert by["LatencyOverSla"].notifications == 6
    assert by["DriftDetected"].notifications == 1
