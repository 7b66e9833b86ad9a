"""SLOs and cost over HTTP through the real app: status, objectives as audited versions, the
month's SLA report as JSON and HTML, the cost report, and clear 4xx answers naming the field."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from medops.services import Services
from tests.helpers.http import problem
from tests.helpers.registry import DEPLOYMENT
from tests.helpers.usage import traffic

OBJECTIVES = {
    "period_days": 28,
    "objectives": [
        {"name": "availability", "kind": "availability", "target": 0.995},
        {"name": "fast", "kind": "latency", "target": 0.99, "threshold_ms": 250},
    ],
}


def test_status_objectives_report_and_cost(
    http: httpx.Client, services: Services, deployed: dict[str, dict[str, str]]
) -> None:
    """An ML engineer sets objectives; an auditor reads the status, the report (JSON and
    HTML) and the cost of what was served."""
    traffic(services, 30, errors=1)
    changed = http.put(
        f"/api/v1/slo/{DEPLOYMENT}/objectives", json=OBJECTIVES, headers=deployed["mle"]
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 1
    reader = deployed["aud"]
    current = http.get(f"/api/v1/slo/{DEPLOYMENT}/objectives", headers=reader).json()
    assert current["current"]["period_days"] == 28
    assert [v["version"] for v in current["versions"]] == [1]
    status = http.get(f"/api/v1/slo/{DEPLOYMENT}", headers=reader)
    assert status.status_code == 200, status.text
    names = [o["objective"]["name"] for o in status.json()["objectives"]]
    assert names == ["availability", "fast"]
    every = http.get("/api/v1/slo", headers=reader).json()
    assert [s["deployment"] for s in every] == [DEPLOYMENT]
    report = http.get(
        f"/api/v1/slo/{DEPLOYMENT}/report", params={"month": "2026-01"}, headers=reader
    )
    assert report.status_code == 200, report.text
    assert report.json()["requests"] == 3000
    page = http.get(
        f"/api/v1/slo/{DEPLOYMENT}/report",
        params={"month": "2026-01", "format": "html"},
        headers=reader,
    )
    assert page.headers["content-type"].startswith("text/html")
    assert "SLA report" in page.text
    cost = http.get("/api/v1/cost", params={"deployment": DEPLOYMENT}, headers=reader)
    assert cost.status_code == 200, cost.text
    assert cost.json()["deployments"][0]["requests"] == 3000


def test_objectives_for_every_deployment_through_star(
    http: httpx.Client, deployed: dict[str, dict[str, str]]
) -> None:
    """``*`` sets the objectives of deployments without their own."""
    answer = http.put("/api/v1/slo/*/objectives", json=OBJECTIVES, headers=deployed["mle"])
    assert answer.status_code == 200, answer.text
    current = http.get(f"/api/v1/slo/{DEPLOYMENT}/objectives", headers=deployed["aud"]).json()
    assert current["current"]["scope"] == "*"


def test_bad_input_is_a_4xx_naming_the_field(
    http: httpx.Client, deployed: dict[str, dict[str, str]]
) -> None:
    """A bad month, format, target or period, and an unknown deployment, are refused."""
    reader = deployed["aud"]
    month = http.get(
        f"/api/v1/slo/{DEPLOYMENT}/report", params={"month": "2026-13"}, headers=reader
    )
    assert "month" in str(problem(month, 422, "invalid-input"))
    later = datetime.now(UTC).year + 2
    future = http.get(
        f"/api/v1/slo/{DEPLOYMENT}/report", params={"month": f"{later}-01"}, headers=reader
    )
    assert "month" in str(problem(future, 422, "invalid-input"))
    fmt = http.get(f"/api/v1/slo/{DEPLOYMENT}/report", params={"format": "pdf"}, headers=reader)
    assert "format" in str(problem(fmt, 422, "invalid-input"))
    bad = {"objectives": [{"name": "availability", "kind": "availability", "target": 1.5}]}
    target = http.put(f"/api/v1/slo/{DEPLOYMENT}/objectives", json=bad, headers=deployed["mle"])
    assert "target" in str(problem(target, 422, "invalid-input"))
    period = http.put(
        f"/api/v1/slo/{DEPLOYMENT}/objectives", json={"period_days": 7}, headers=deployed["mle"]
    )
    assert "period_days" in str(problem(period, 422, "invalid-input"))
    problem(http.get("/api/v1/slo/nowhere", headers=reader), 404, "not-found")
    days = http.get("/api/v1/cost", params={"days": 0}, headers=reader)
    assert "days" in str(problem(days, 422, "invalid-input"))


def test_a_clinician_cannot_change_objectives(
    http: httpx.Client, deployed: dict[str, dict[str, str]]
) -> None:
    """Setting objectives needs alerts:configure."""
    answer = http.put(
        f"/api/v1/slo/{DEPLOYMENT}/objectives", json=OBJECTIVES, headers=deployed["clin"]
    )
    problem(answer, 403, "forbidden")
