"""The alert pages: what fires, for which team, who took it; the answer forms only for those
who may answer; silences with their author and reason. On SQLite and PostgreSQL."""

from __future__ import annotations

import html
from datetime import datetime

import httpx
from sqlalchemy.orm import Session

from medops.alerting.records import AlertOut
from medops.alerting.schemas import Observation
from medops.services import Services
from tests.helpers.registry import DEPLOYMENT


def _drifting(_session: Session, _now: datetime) -> list[Observation]:
    return [
        Observation(
            signal="drift_detected",
            deployment=DEPLOYMENT,
            value=1.0,
            evidence=f"/deployments/{DEPLOYMENT}",
        )
    ]


def _firing(http: httpx.Client, services: Services, people: dict[str, dict[str, str]]) -> AlertOut:
    services.alerts.signal_sources[:] = [_drifting]
    ran = http.post("/api/v1/alerts/evaluate", json={}, headers=people["mle"])
    assert ran.status_code == 200, ran.text
    [alert] = [
        AlertOut.model_validate(a) for a in http.get("/api/v1/alerts", headers=people["mle"]).json()
    ]
    return alert


def test_the_list_shows_a_firing_alert_with_its_team_and_links_to_it(
    http: httpx.Client, deployed: dict[str, dict[str, str]], services: Services
) -> None:
    """A firing drift alert is listed with severity, team and state, linked to its page; the
    count of unacknowledged firing alerts is said first."""
    alert = _firing(http, services, deployed)
    page = http.get("/alerts", headers=deployed["clin"])
    assert page.status_code == 200, page.text
    assert f'<a href="/alerts/{alert.id}">DriftDetected</a>' in page.text
    assert "1 alert(s) firing and not acknowledged." in page.text
    assert '<span class="badge bad">firing</span>' in page.text
    assert "data_science" in page.text
    assert '<a href="/alerts" aria-current="page">Alerts</a>' in page.text


def test_a_responder_acknowledges_from_the_alert_page_and_the_page_shows_who(
    http: httpx.Client, deployed: dict[str, dict[str, str]], services: Services
) -> None:
    """The alert page offers acknowledge, resolve and silence forms posting to the API; after
    the API acknowledges, the page says who took it, and the acknowledge form is gone."""
    alert = _firing(http, services, deployed)
    page = http.get(f"/alerts/{alert.id}", headers=deployed["clin"]).text
    assert f'data-api="/api/v1/alerts/{alert.id}/acknowledge"' in page
    assert f'data-api="/api/v1/alerts/{alert.id}/resolve"' in page
    assert 'data-api="/api/v1/alerts/silences"' in page
    assert f'<a href="/deployments/{DEPLOYMENT}">/deployments/{DEPLOYMENT}</a>' in page
    taken = http.post(
        f"/api/v1/alerts/{alert.id}/acknowledge", json={"note": "looking"}, headers=deployed["clin"]
    )
    assert taken.status_code == 200, taken.text
    after = html.unescape(http.get(f"/alerts/{alert.id}", headers=deployed["clin"]).text)
    assert "by user-clinician — looking" in after
    assert f'data-api="/api/v1/alerts/{alert.id}/acknowledge"' not in after


def test_an_auditor_reads_alerts_without_any_form_and_links_to_the_trail(
    http: httpx.Client, deployed: dict[str, dict[str, str]], services: Services
) -> None:
    """alerts:read without alerts:respond: the page, no answer form, and a link to the
    alert's audit records."""
    alert = _firing(http, services, deployed)
    page = http.get(f"/alerts/{alert.id}", headers=deployed["aud"]).text
    assert "data-api=" not in page.replace('data-api="/api/v1/auth/logout"', "")
    assert f"resource_id={alert.id}" in page


def test_a_silence_made_through_the_api_is_listed_with_author_and_reason(
    http: httpx.Client, deployed: dict[str, dict[str, str]], services: Services
) -> None:
    """A silence shows its matchers, author and reason, with an expire form for responders."""
    alert = _firing(http, services, deployed)
    made = http.post(
        "/api/v1/alerts/silences",
        json={
            "matchers": [{"label": "alertname", "value": alert.name}],
            "ends_at": "2999-01-01T00:00:00Z",
            "reason": "retraining under way",
        },
        headers=deployed["clin"],
    )
    assert made.status_code == 201, made.text
    page = http.get("/alerts", headers=deployed["clin"]).text
    assert "<code>alertname=DriftDetected</code>" in page
    assert "retraining under way" in page
    assert f'data-api="/api/v1/alerts/silences/{made.json()["id"]}/expire"' in page


def test_an_unknown_alert_is_a_404_page(
    http: httpx.Client, deployed: dict[str, dict[str, str]]
) -> None:
    """An id that names no alert answers 404."""
    assert http.get("/alerts/nothing-here", headers=deployed["clin"]).status_code == 404
