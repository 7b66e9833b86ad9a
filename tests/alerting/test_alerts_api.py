"""Alerts over real HTTP through the app, on SQLite and PostgreSQL: a drift alert from a real
deployment's signals, acknowledged and resolved through the API; rules and config versioned;
bad input named in problem+json."""

from __future__ import annotations

from datetime import timedelta

import httpx

from medops.alerting.signals import event_signals
from medops.services import Services
from medops.testing import FixedClock
from tests.helpers.alerting import hooked
from tests.helpers.registry import DEPLOYMENT


def test_alert_life_through_the_api(
    http: httpx.Client,
    deployed: dict[str, dict[str, str]],
    services: Services,
    clock: FixedClock,
) -> None:
    """Evaluate (alerts:run), list and show (alerts:read), acknowledge and resolve
    (alerts:respond) with notes; the history lists the alert with who answered it."""
    people = deployed
    hooked(services).set("drift_detected", 1, deployment=DEPLOYMENT)
    ran = http.post("/api/v1/alerts/evaluate", json={}, headers=people["mle"])
    assert ran.status_code == 200, ran.text
    assert ran.json()["firing"] == 1
    [alert] = http.get("/api/v1/alerts", headers=people["clin"]).json()
    assert alert["name"] == "DriftDetected"
    assert http.get(f"/api/v1/alerts/{alert['id']}", headers=people["aud"]).json()["state"] == (
        "firing"
    )
    acked = http.post(
        f"/api/v1/alerts/{alert['id']}/acknowledge", json={"note": "on it"}, headers=people["clin"]
    )
    assert acked.status_code == 200, acked.text
    assert acked.json()["acknowledged_by"] == "user-clinician"
    again = http.post(f"/api/v1/alerts/{alert['id']}/acknowledge", json={}, headers=people["clin"])
    assert again.status_code == 409
    clock.advance(timedelta(minutes=5))
    done = http.post(
        f"/api/v1/alerts/{alert['id']}/resolve", json={"note": "retrained"}, headers=people["clin"]
    )
    assert done.json()["state"] == "resolved"
    start = (clock.now() - timedelta(hours=1)).isoformat()
    end = (clock.now() + timedelta(hours=1)).isoformat()
    history = http.get(
        "/api/v1/alerts/history",
        params={"deployment": DEPLOYMENT, "start": start, "end": end},
        headers=people["aud"],
    ).json()
    assert [(h["name"], h["acknowledged_by"], h["resolve_note"]) for h in history] == [
        ("DriftDetected", "user-clinician", "retrained")
    ]
    missing = http.get("/api/v1/alerts/" + "0" * 32, headers=people["aud"])
    assert missing.status_code == 404


def test_rules_and_config_are_versioned_and_bad_input_names_the_field(
    http: httpx.Client, deployed: dict[str, dict[str, str]]
) -> None:
    """A deployment's rule set is stored as version 1 then 2; a rule set for an unknown
    deployment is 404; a config naming an undefined receiver is 422 naming the field."""
    people = deployed
    rules = {
        "scope": DEPLOYMENT,
        "rules": [{"name": "DriftDetected", "signal": "drift_detected", "threshold": 0.5}],
    }
    first = http.put("/api/v1/alerts/rules", json=rules, headers=people["mle"])
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 1
    second = http.put("/api/v1/alerts/rules", json=rules, headers=people["mle"])
    assert second.json()["version"] == 2
    assert "AccuracyDrop" in second.json()["effective"]
    unknown = http.put(
        "/api/v1/alerts/rules", json={**rules, "scope": "nowhere"}, headers=people["mle"]
    )
    assert unknown.status_code == 404
    bad_rule = http.put(
        "/api/v1/alerts/rules",
        json={"scope": "*", "rules": [{"name": "lower", "signal": "x", "threshold": 1}]},
        headers=people["mle"],
    )
    assert bad_rule.status_code == 422
    assert "name" in bad_rule.text
    config = {"route": {"receiver": "nobody"}}
    refused = http.put("/api/v1/alerts/config", json=config, headers=people["mle"])
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert "route.receiver" in refused.text
    good = {
        "route": {"receiver": "ops", "routes": [{"matchers": [{"label": "team", "value": "ops"}],
                                                 "continue": True}]},
        "receivers": [{"name": "ops", "kind": "webhook", "url": "https://example.invalid/x"}],
    }  # fmt: skip
    stored = http.put("/api/v1/alerts/config", json=good, headers=people["mle"])
    assert stored.status_code == 200, stored.text
    shown = http.get("/api/v1/alerts/config", headers=people["clin"]).json()
    assert shown["version"] == 1
    assert shown["config"]["route"]["routes"][0]["continue"] is True


def test_silences_through_the_api(
    http: httpx.Client, deployed: dict[str, dict[str, str]], clock: FixedClock
) -> None:
    """A silence without a reason is 422 naming ``reason``; created, listed, expired."""
    people = deployed
    ends = (clock.now() + timedelta(hours=1)).isoformat()
    body = {"matchers": [{"label": "deployment", "value": DEPLOYMENT}], "ends_at": ends}
    refused = http.post("/api/v1/alerts/silences", json=body, headers=people["clin"])
    assert refused.status_code == 422
    assert "reason" in refused.text
    made = http.post(
        "/api/v1/alerts/silences", json={**body, "reason": "planned"}, headers=people["clin"]
    )
    assert made.status_code == 201, made.text
    listed = http.get("/api/v1/alerts/silences", headers=people["aud"]).json()
    assert [s["id"] for s in listed] == [made.json()["id"]]
    expired = http.post(
        f"/api/v1/alerts/silences/{made.json()['id']}/expire", json={}, headers=people["clin"]
    )
    assert expired.json()["active"] is False
    assert http.get("/api/v1/alerts/silences", headers=people["aud"]).json() == []


def test_the_real_deployment_gives_a_canary_signal(
    deployed: dict[str, dict[str, str]], services: Services, clock: FixedClock
) -> None:
    """The built-in signals read the real deployment: no auto-rollback in the last hour."""
    with services.db.session() as session:
        [seen] = event_signals(session, DEPLOYMENT, clock.now())
    assert (seen.signal, seen.value, seen.deployment) == ("canary_rolled_back", 0.0, DEPLOYMENT)
