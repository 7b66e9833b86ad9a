"""The monthly SLA report: attainment and budget over the calendar month, the budget spent
day by day, the incidents with who acknowledged and resolved them, as JSON and as a
self-contained HTML page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from medops.alerting.slo_schemas import Actor, Incident
from medops.errors import InvalidInputError
from medops.services import Services
from tests.helpers.registry import DEPLOYMENT
from tests.helpers.usage import traffic

MONTH_START = datetime(2026, 1, 1, tzinfo=UTC)
INCIDENT = Incident(
    name="ErrorRateHigh",
    severity="critical",
    started=datetime(2026, 1, 1, 9, 5, tzinfo=UTC),
    acknowledged=Actor(by="oncall-ops", at=datetime(2026, 1, 1, 9, 20, tzinfo=UTC)),
    resolved=Actor(by=None, at=datetime(2026, 1, 1, 10, 5, tzinfo=UTC)),
    notifications=3,
    summary="error rate above 1%",
)


def history(deployment: str, start: datetime, end: datetime) -> list[Incident]:
    """The incidents a source (the alert engine's history at the merge) answers."""
    return [INCIDENT] if deployment == DEPLOYMENT and start <= INCIDENT.started < end else []


@pytest.mark.usefixtures("deployed")
def test_the_report_shows_attainment_budget_and_incidents(services: Services) -> None:
    """Two hours of traffic, one at 1% errors, on January 1st: availability 99.5% (missed),
    60 bad requests against 12 allowed (the budget spent five times over on day one), the
    incident listed with its acknowledgement and resolution."""
    services.slo.incident_sources.append(history)
    traffic(services, 60, end=datetime(2026, 1, 1, 9, 59, tzinfo=UTC), errors=1)
    traffic(services, 60, end=datetime(2026, 1, 1, 8, 59, tzinfo=UTC))
    report = services.slo.report(DEPLOYMENT, "2026-01", now=datetime(2026, 1, 2, tzinfo=UTC))
    available = next(o for o in report.objectives if o.objective.name == "availability")
    assert (available.good, available.total) == (11_940, 12_000)
    assert available.attainment == pytest.approx(0.995)
    assert available.met is False
    assert available.budget_remaining == pytest.approx(1 - 60 / 12)
    assert available.budget_spent_by_day[0] == pytest.approx(5.0)
    assert report.incidents == [INCIDENT]
    assert INCIDENT.minutes_open == 60
    assert report.requests == 12_000
    assert [d.day for d in report.days] == [MONTH_START]  # the month so far
    assert report.days[0].total["availability"] == 12_000
    assert report.p95_ms is not None
    assert report.p95_ms <= 10
    assert report.cost is not None
    assert report.cost.requests == 12_000


@pytest.mark.usefixtures("deployed")
def test_the_html_report_is_self_contained(services: Services) -> None:
    """The page holds the objectives, an SVG chart per objective and the incident with who
    acknowledged it; no script and nothing fetched."""
    services.slo.incident_sources.append(history)
    traffic(services, 30, end=datetime(2026, 1, 1, 9, 59, tzinfo=UTC))
    report = services.slo.report(DEPLOYMENT, "2026-01", now=datetime(2026, 2, 3, tzinfo=UTC))
    assert len(report.days) == 31
    page = services.slo.report_html(report)
    assert page.startswith("<!DOCTYPE html>")
    assert "SLA report: diabetes, 2026-01" in page
    assert page.count("<svg") == len(report.objectives)
    assert "ErrorRateHigh" in page
    assert "oncall-ops" in page
    assert "<h2>Cost</h2>" in page
    assert "<script" not in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


@pytest.mark.usefixtures("deployed")
def test_a_month_without_traffic_has_no_attainment(services: Services) -> None:
    """No usage and no windows: attainment undefined, no incident."""
    report = services.slo.report(DEPLOYMENT, "2025-12", now=MONTH_START + timedelta(days=1))
    assert all(o.attainment is None for o in report.objectives)
    assert report.incidents == []
    assert "No alert fired this month." in services.slo.report_html(report)


@pytest.mark.usefixtures("deployed")
@pytest.mark.parametrize("month", ["2026-13", "January", "2026-1", "2027-01"])
def test_a_bad_month_is_refused_naming_the_field(services: Services, month: str) -> None:
    """A month that is not YYYY-MM, or has not begun, is refused naming ``month``."""
    with pytest.raises(InvalidInputError) as refused:
        services.slo.report(DEPLOYMENT, month)
    assert [e.field for e in refused.value.errors] == ["month"]
