"""The built-in signals over real stored data, on SQLite and PostgreSQL: a computed monitoring
window of the served deployment, serving usage rows, and failing outbox rows."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import httpx

from medops.alerting import signals
from medops.alerting.schemas import Observation
from medops.alerting.tables import AlertNotification
from medops.audit.service import exempt_from_audit_guard
from medops.services import Services
from medops.serving.tables import ServingUsage
from medops.serving.usage import LATENCY_BOUNDS_MS, bucket_of
from medops.testing import FixedClock
from tests.helpers.alerting import PERSON, config, outbox
from tests.helpers.monitoring_windows import serve_with_outcomes
from tests.helpers.registry import DEPLOYMENT


def _by_signal(found: list[Observation]) -> dict[str, float]:
    """Each signal's value, but per-feature ones (a window's signals carry its kind)."""
    return {o.signal: o.value for o in found if set(o.labels) <= {"window", "version"}}


def test_window_signals_and_staleness_from_a_computed_window(
    http: httpx.Client,
    deployed: dict[str, dict[str, str]],
    services: Services,
    clock: FixedClock,
) -> None:
    """A day window with every outcome: no drift flag beyond the window's own, outcomes
    present, not stale; three days later the same window is stale."""
    serve_with_outcomes(http, deployed["clin"], clock, 60, timedelta(days=1))
    run = http.post("/api/v1/monitoring/run", json={"window": "day"}, headers=deployed["mle"])
    assert run.json()["computed"], run.text
    with services.db.session() as session:
        found = signals.monitoring_signals(session, DEPLOYMENT, clock.now())
        later = signals.monitoring_signals(session, DEPLOYMENT, clock.now() + timedelta(days=3))
    values = _by_signal(found)
    assert values["monitoring_stale"] == 0.0
    assert values["no_outcomes"] == 0.0
    assert values["drift_detected"] in (0.0, 1.0)
    assert values["outcome_backlog"] == 0.0
    assert "calibration_error" in values
    drift = next(o for o in found if o.signal == "drift_detected")
    assert drift.labels == {"window": "day", "version": "1"}
    evidence = drift.evidence
    assert evidence is not None
    assert evidence.startswith(f"/deployments/{DEPLOYMENT}/windows/day/1/")
    assert _by_signal(later)["monitoring_stale"] == 1.0
    services.alerts.set_config(PERSON, config(clock.now(), group_wait=0))
    services.alerts.evaluate(PERSON, clock.now() + timedelta(days=3))
    sent = outbox(services)
    assert sent  # MonitoringStale at least
    for _, payload in sent:  # the patients behind the window are never named
        assert '"p-' not in payload.model_dump_json()


def _usage(services: Services, start: datetime, minutes: int, latency_ms: float) -> None:
    counts = [0] * (len(LATENCY_BOUNDS_MS) + 1)
    counts[bucket_of(latency_ms)] = 100
    with services.db.transaction() as session:
        exempt_from_audit_guard(session)  # usage rows are bookkeeping, as the recorder's
        for minute in range(minutes):
            session.add(
                ServingUsage(
                    deployment=DEPLOYMENT, minute=start + timedelta(minutes=minute),
                    replica="r1", requests=100, errors=3, shed=0, client_errors=0,
                    records=100, latency=json.dumps(counts), latency_sum_ms=100 * latency_ms,
                    cpu_seconds=1.0, gpu_seconds=0.0, memory_byte_seconds=1.0,
                )
            )  # fmt: skip


def test_slow_and_failing_serving_fires_latency_and_error_alerts_after_five_minutes(
    deployed: dict[str, dict[str, str]], services: Services, clock: FixedClock
) -> None:
    """Usage rows at ~900 ms and 3% errors: LatencyOverSla and ErrorRateHigh pending at
    first, firing five minutes later, evaluated from the real signals."""
    start = clock.now().replace(second=0, microsecond=0) - timedelta(minutes=5)
    _usage(services, start, 12, 900.0)
    with services.db.session() as session:
        values = _by_signal(signals.serving_signals(session, DEPLOYMENT, clock.now()))
    assert values["error_rate"] == 0.03
    assert values["latency_p95_ms"] > 500
    assert values["no_traffic"] == 0.0
    services.alerts.evaluate(PERSON)
    states = {a.name: a.state for a in services.alerts.list_alerts()}
    assert states["LatencyOverSla"] == states["ErrorRateHigh"] == "pending"
    # Burning the error budgets this fast pages at once (the burn windows are the delay).
    assert states["SloFastBurn"] == "firing"
    clock.advance(timedelta(minutes=5))
    services.alerts.evaluate(PERSON)
    names = {a.name: a.state for a in services.alerts.list_alerts()}
    assert names["LatencyOverSla"] == "firing"
    assert names["ErrorRateHigh"] == "firing"
    clock.advance(timedelta(minutes=20))
    with services.db.session() as session:
        quiet = _by_signal(signals.serving_signals(session, DEPLOYMENT, clock.now()))
    assert quiet["no_traffic"] == 1.0
    assert "error_rate" not in quiet


def test_a_receiver_whose_last_three_notifications_failed_is_failing(
    services: Services, clock: FixedClock
) -> None:
    """Three failed rows for ``pager`` make it failing; ``mail``'s sent row does not."""
    with services.db.transaction() as session:
        exempt_from_audit_guard(session)
        for n, (receiver, status, error) in enumerate(
            [("pager", "queued", "HTTP 503")] * 3 + [("mail", "sent", None)]
        ):
            session.add(
                AlertNotification(
                    id=f"{n:032x}", dedup_key=f"k{n}", receiver=receiver, kind="firing",
                    group_key="g", payload="{}", status=status, attempts=1,
                    next_attempt_at=clock.now(), created_at=clock.now() + timedelta(seconds=n),
                    last_error=error,
                )
            )  # fmt: skip
    with services.db.session() as session:
        found = signals.receiver_signals(session, clock.now())
    assert {o.labels["receiver"]: o.value for o in found} == {"mail": 0.0, "pager": 1.0}
