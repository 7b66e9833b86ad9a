"""The service-level page: each deployment's objectives with their budgets and burn alerts,
the month's SLA report linked, and the cost of serving. On SQLite and PostgreSQL."""

from __future__ import annotations

import html

import httpx

from medops.services import Services
from tests.helpers.registry import DEPLOYMENT
from tests.helpers.usage import traffic


def test_objectives_budgets_and_burn_alerts_of_a_failing_deployment(
    http: httpx.Client, deployed: dict[str, dict[str, str]], services: Services
) -> None:
    """An hour of 5% server errors misses the 99.9% availability objective, spends its budget
    and holds the fast page condition; the page says so, with the month's report linked."""
    traffic(services, 60, requests=100, errors=5)
    page = http.get("/slo", headers=deployed["aud"])
    assert page.status_code == 200, page.text
    text = html.unescape(page.text)
    assert f'<a href="/deployments/{DEPLOYMENT}">{DEPLOYMENT}</a>' in text
    assert "99.9% not failed" in text
    assert '<span class="badge bad">missed</span>' in text
    assert '<span class="badge bad">page 1h/5m</span>' in text
    assert f"/api/v1/slo/{DEPLOYMENT}/report?month=2026-01&format=html" in text
    assert "objective(s) missed over their rolling period." in text


def test_the_cost_table_shows_what_the_deployment_served(
    http: httpx.Client, deployed: dict[str, dict[str, str]], services: Services
) -> None:
    """The cost section lists the deployment with the predictions its usage rows count."""
    traffic(services, 10, requests=50)
    text = http.get("/slo", headers=deployed["mle"]).text
    cost = text[text.index('id="cost"') :]
    assert f'<td>{DEPLOYMENT}</td><td class="num">500</td>' in cost


def test_the_report_link_opens_the_sla_report_for_a_signed_in_reader(
    http: httpx.Client, deployed: dict[str, dict[str, str]], services: Services
) -> None:
    """The link the page gives answers the month's HTML SLA report."""
    traffic(services, 5)
    answer = http.get(
        f"/api/v1/slo/{DEPLOYMENT}/report",
        params={"month": "2026-01", "format": "html"},
        headers=deployed["aud"],
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/html")
