"""The SLO service over real usage rows and monitoring windows: objectives as versioned,
audited documents, status (attainment, budget, burn rates) and the burn-rate observations the
alert engine reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from medops.alerting.slo_data import window_accuracy
from medops.alerting.slo_schemas import Objective, ObjectiveStatus, SloConfigIn
from medops.audit.service import exempt_from_audit_guard
from medops.errors import NotFoundError
from medops.monitoring.tables import MonitoringResult
from medops.services import Services
from medops.serving.usage import LATENCY_BOUNDS_MS
from medops.testing import FixedClock, capture_audit
from tests.helpers.monitoring_windows import serve_with_outcomes
from tests.helpers.people import SYSTEM_CTX
from tests.helpers.registry import DEPLOYMENT
from tests.helpers.usage import traffic

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)  # the FixedClock's start


def objective(statuses: list[ObjectiveStatus], name: str) -> ObjectiveStatus:
    """The status of the objective called ``name``."""
    return next(o for o in statuses if o.objective.name == name)


@pytest.mark.usefixtures("deployed")
def test_the_defaults_apply_until_a_version_is_set(services: Services) -> None:
    """Without a stored version a deployment has the built-in objectives: 99.9% available,
    95% under 500 ms, 90% stable windows, over 30 days."""
    config = services.slo.config(DEPLOYMENT)
    assert config.scope == "default"
    assert config.period_days == 30
    targets = {(o.name, o.kind, o.target) for o in config.objectives}
    assert targets == {
        ("availability", "availability", 0.999),
        ("latency", "latency", 0.95),
        ("quality", "quality", 0.9),
    }


@pytest.mark.usefixtures("deployed")
def test_setting_objectives_keeps_every_version_and_audits_before_and_after(
    services: Services,
) -> None:
    """Two versions for the deployment: the newest applies, both stay, each audited slo.set
    with before and after; a ``*`` version applies to deployments without their own."""
    first = SloConfigIn(
        scope=DEPLOYMENT,
        period_days=28,
        objectives=[Objective(name="availability", kind="availability", target=0.99)],
    )
    with capture_audit(services) as audit:
        services.slo.set(SYSTEM_CTX, first)
        second = services.slo.set(SYSTEM_CTX, first.model_copy(update={"period_days": 30}))
    assert second.version == 2
    events = audit.find("slo.set")
    assert [e.resource_id for e in events] == [DEPLOYMENT, DEPLOYMENT]
    assert events[0].details is not None
    assert events[0].details["before"] is None
    assert events[1].details is not None
    assert events[1].details["before"]["period_days"] == 28
    assert events[1].details["after"]["period_days"] == 30
    assert [v.version for v in services.slo.versions(DEPLOYMENT)] == [1, 2]
    assert services.slo.config(DEPLOYMENT).period_days == 30
    services.slo.set(SYSTEM_CTX, first.model_copy(update={"scope": "*"}))
    assert services.slo.config(DEPLOYMENT).scope == DEPLOYMENT  # its own still wins


def test_objectives_for_an_unknown_deployment_are_refused(services: Services) -> None:
    """Setting or reading objectives of a deployment that does not exist is NotFound."""
    with pytest.raises(NotFoundError):
        services.slo.set(SYSTEM_CTX, SloConfigIn(scope="nowhere"))
    with pytest.raises(NotFoundError):
        services.slo.status("nowhere")


@pytest.mark.usefixtures("deployed")
def test_status_counts_attainment_and_budget_over_every_replica(services: Services) -> None:
    """Two replicas, an hour each of 100 req/min with 1 error per minute on one: 12,000
    requests, 60 bad; 99.5% available, 5 times the 12 bad requests allowed; latency all fast."""
    traffic(services, 60, errors=1, replica="r1")
    traffic(services, 60, replica="r2")
    status = services.slo.status(DEPLOYMENT)
    available = objective(status.objectives, "availability")
    assert (available.total, available.bad) == (12_000, 60)
    assert available.attainment == pytest.approx(0.995)
    assert available.met is False
    assert available.allowed_bad == pytest.approx(12)
    assert available.budget_remaining == pytest.approx(1 - 60 / 12)
    assert available.burn_rate_1h == pytest.approx(5)
    latency = objective(status.objectives, "latency")
    assert (latency.attainment, latency.met, latency.bad) == (1.0, True, 0)
    quality = objective(status.objectives, "quality")
    assert quality.total == 0
    assert quality.attainment is None


@pytest.mark.usefixtures("deployed")
def test_slow_requests_spend_the_latency_budget(services: Services) -> None:
    """Half the requests at 800 ms: the latency objective's attainment is 50%, and those over
    the threshold are the bad ones."""
    traffic(services, 30, requests=50, latency_ms=800)
    traffic(services, 30, requests=50, latency_ms=100, replica="r2")
    latency = objective(services.slo.status(DEPLOYMENT).objectives, "latency")
    assert latency.attainment == pytest.approx(0.5)
    assert latency.objective.threshold_ms in LATENCY_BOUNDS_MS
    assert any(b.firing for b in latency.burn if b.severity == "page")


@pytest.mark.usefixtures("deployed")
def test_a_fast_burn_is_observed_and_ends_when_the_errors_stop(
    services: Services, clock: FixedClock
) -> None:
    """A day of clean traffic, then an hour at 3% errors: slo_fast_burn and slo_slow_burn are
    1 for availability, 0 for latency; ten clean minutes later the fast burn is 0 (its 5 m
    window is clean) while the slow burn still holds."""
    traffic(services, 1440, end=NOW - timedelta(hours=1))
    traffic(services, 60, errors=3)
    with services.db.session() as session:
        found = services.slo.observations(session, NOW)
    values = {(o.signal, o.labels["objective"]): o.value for o in found}
    assert values == {
        ("slo_fast_burn", "availability"): 1.0,
        ("slo_slow_burn", "availability"): 1.0,
        ("slo_fast_burn", "latency"): 0.0,
        ("slo_slow_burn", "latency"): 0.0,
    }
    assert all(o.deployment == DEPLOYMENT for o in found)
    later = NOW + timedelta(minutes=10)
    traffic(services, 10, end=later, replica="r2")
    clock.set(later)
    with services.db.session() as session:
        after = {
            (o.signal, o.labels["objective"]): o.value
            for o in services.slo.observations(session, later)
        }
    assert after[("slo_fast_burn", "availability")] == 0.0
    assert after[("slo_slow_burn", "availability")] == 1.0


def test_no_traffic_no_observations(services: Services) -> None:
    """Deployments without usage in the last 3 days give no burn-rate signal."""
    with services.db.session() as session:
        assert services.slo.observations(session, NOW) == []


@pytest.mark.usefixtures("deployed")
def test_quality_is_the_share_of_stable_windows(services: Services) -> None:
    """Nine stable daily windows and one with covariate shift: 90% attainment, met."""
    with services.db.transaction() as session:
        exempt_from_audit_guard(session)
        for day in range(10):
            end = NOW - timedelta(days=day)
            session.add(
                MonitoringResult(
                    deployment=DEPLOYMENT,
                    model_name="diabetes-risk",
                    version=1,
                    window_kind="day",
                    sequence=day,
                    window_start=end - timedelta(days=1),
                    window_end=end,
                    rows=100,
                    labelled=0,
                    status="ok",
                    verdict="covariate-shift" if day == 3 else "stable",
                    drifted=day == 3,
                    alerts=json.dumps([]),
                    result="{}",
                    computed_at=end,
                )
            )
    quality = objective(services.slo.status(DEPLOYMENT).objectives, "quality")
    assert (quality.good, quality.total) == (9, 10)
    assert quality.met is True


def test_quality_with_a_floor_reads_the_computed_window(
    http: httpx.Client,
    services: Services,
    clock: FixedClock,
    deployed: dict[str, dict[str, str]],
) -> None:
    """A day of predictions whose outcomes are the predicted labels, monitored: the window's
    realised accuracy, read from its document, is 1.0; the window counts once, good only if
    its verdict is stable."""
    serve_with_outcomes(http, deployed["clin"], clock, 60, timedelta(days=1, minutes=5))
    run = http.post("/api/v1/monitoring/run", json={"window": "day"}, headers=deployed["mle"])
    assert run.status_code == 200, run.text
    [window] = run.json()["computed"]
    with services.db.session() as session:
        [row] = session.scalars(select(MonitoringResult))
        assert window_accuracy(row) == pytest.approx(1.0)
    floor = Objective(name="quality", kind="quality", target=0.5, accuracy_floor=0.9)
    services.slo.set(SYSTEM_CTX, SloConfigIn(scope=DEPLOYMENT, objectives=[floor]))
    [quality] = services.slo.status(DEPLOYMENT).objectives
    assert quality.total == 1
    assert quality.good == int(window["verdict"] == "stable")
