"""A deployment's monitoring configuration over HTTP: the defaults until set, replaced by an
ML engineer under audit, refused to other roles and to bad input (422 naming the field), and
applied by the next run; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select

from medops.audit.tables import AuditEvent
from medops.monitoring.tables import MonitoringConfiguration
from medops.services import Services
from medops.testing import FixedClock, capture_audit
from tests.helpers.registry import DEPLOYMENT, predict, random_records

URL = "/api/v1/monitoring/config"
DEFAULTS = {
    "deployment": DEPLOYMENT,
    "thresholds": {},
    "correction": "holm",
    "thresholds_mode": "fixed",
    "min_samples": 30,
    "updated_at": None,
    "updated_by": None,
}


def test_the_configuration_reads_as_the_defaults_until_set_and_every_change_is_audited(
    http: httpx.Client,
    services: Services,
    clock: FixedClock,
    deployed: dict[str, dict[str, str]],
) -> None:
    """Any monitoring reader gets the defaults until a configuration is set; an ML engineer's
    PUT replaces the whole configuration (fields left out take their defaults), GET returns
    it with who set it and when, and each change is audited with before and after."""
    first = http.get(URL, params={"deployment": DEPLOYMENT}, headers=deployed["aud"])
    assert first.status_code == 200, first.text
    assert first.json() == DEFAULTS
    body = {
        "deployment": DEPLOYMENT,
        "thresholds": {"bmi": {"psi": 0.3, "ks": 0.01}, "sex": {"missing_rate": 0.1}},
        "correction": "bh",
        "thresholds_mode": "learned",
        "min_samples": 50,
    }
    with capture_audit(services) as audit:
        stored = http.put(URL, json=body, headers=deployed["mle"])
        clock.advance(timedelta(minutes=5))
        replaced = http.put(
            URL, json={"deployment": DEPLOYMENT, "correction": "none"}, headers=deployed["mle"]
        )
    assert stored.status_code == 200, stored.text
    assert {k: stored.json()[k] for k in body} == body
    assert stored.json()["updated_by"] == "user-ml-engineer"
    assert stored.json()["updated_at"] is not None
    assert replaced.status_code == 200, replaced.text
    read = http.get(URL, params={"deployment": DEPLOYMENT}, headers=deployed["clin"]).json()
    assert read == replaced.json()
    assert read["correction"] == "none"
    assert read["thresholds"] == {}
    assert read["thresholds_mode"] == "fixed"
    assert read["updated_at"] > stored.json()["updated_at"]

    changes = audit.find("monitoring.configure")
    assert [(e.outcome, e.resource_type, e.resource_id) for e in changes] == [
        ("success", "deployment", DEPLOYMENT),
        ("success", "deployment", DEPLOYMENT),
    ]
    configured = {k: v for k, v in body.items() if k != "deployment"}
    assert changes[0].details == {"before": None, "after": configured}
    assert changes[1].details is not None
    assert changes[1].details["before"] == configured
    assert changes[1].details["after"]["correction"] == "none"
    assert changes[0].actor_name == "user-ml-engineer"


def test_only_monitoring_configure_may_change_it_and_bad_input_is_a_422_naming_the_field(
    http: httpx.Client,
    services: Services,
    deployed: dict[str, dict[str, str]],
) -> None:
    """Data scientists, clinicians and auditors are refused (403); unknown tests, values out
    of range, non-finite numbers, unknown corrections, modes and fields, and too small a
    minimum are 422 problems naming the field; an unknown deployment is a 404; nothing is
    stored by any of them."""
    body = {"deployment": DEPLOYMENT, "thresholds": {"bmi": {"psi": 0.3}}}
    for who in ("ds", "clin", "aud"):
        refused = http.put(URL, json=body, headers=deployed[who])
        assert refused.status_code == 403, who
        assert "monitoring:configure" in refused.json()["detail"]
    bad: list[tuple[dict[str, Any] | str, str, str]] = [
        ({"thresholds": {"bmi": {"t-test": 0.05}}}, "thresholds", "unknown drift test"),
        ({"thresholds": {"bmi": {"psi": -1}}}, "thresholds", "must be above 0"),
        ({"thresholds": {"bmi": {"ks": 1.5}}}, "thresholds", "between 0 and 1"),
        ({"thresholds": {"bmi": {"psi": "high"}}}, "thresholds.bmi.psi", "number"),
        ({"correction": "fdr"}, "correction", "holm"),
        ({"thresholds_mode": "adaptive"}, "thresholds_mode", "learned"),
        ({"min_samples": 1}, "min_samples", "2"),
        ({"min_samples": 2.5}, "min_samples", "integer"),
        ({"alpha": 0.05}, "alpha", "unknown field"),
        ({"deployment": "no such name!"}, "deployment", "pattern"),
        (
            f'{{"deployment": "{DEPLOYMENT}", "thresholds": {{"bmi": {{"psi": 1e999}}}}}}',
            "thresholds",
            "finite",
        ),
    ]
    for change, field, reason in bad:
        if isinstance(change, str):
            answer = http.put(
                URL, content=change, headers=deployed["mle"] | {"content-type": "application/json"}
            )
        else:
            answer = http.put(URL, json=body | change, headers=deployed["mle"])
        assert answer.status_code == 422, (change, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        errors = answer.json()["errors"]
        assert [e["field"] for e in errors] == [field], (change, errors)
        assert reason in errors[0]["reason"], (change, errors)
    for method in ("GET", "PUT"):
        missing = http.request(
            method,
            URL,
            params={"deployment": "nowhere"},
            json={"deployment": "nowhere"} if method == "PUT" else None,
            headers=deployed["mle"],
        )
        assert missing.status_code == 404, method
    with services.db.session() as session:
        assert session.scalars(select(MonitoringConfiguration)).all() == []
        assert not session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "monitoring.configure", AuditEvent.outcome == "success"
            )
        ).all()


def serve_a_shifted_day(
    http: httpx.Client, clin: dict[str, str], clock: FixedClock, day: int
) -> None:
    """120 predictions whose bmi reads 2.5 standard deviations high; then the day ends."""
    records = random_records(120, seed=10 + day)
    for record in records:
        record["bmi"] = min(record["bmi"] + 2.5 * 4.3, 80.0)
    answer = predict(http, clin, {"records": [{"features": r} for r in records]})
    assert answer.status_code == 200, answer.text
    clock.advance(timedelta(days=1))


def _bmi(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["test"]: r for r in document["result"]["features"]["bmi"]}


def test_a_run_judges_each_window_with_the_deployments_configuration(
    http: httpx.Client,
    clock: FixedClock,
    deployed: dict[str, dict[str, str]],
) -> None:
    """Under the defaults a day of bmi 2.5 sigma high is bmi drift; once the ML engineer sets
    thresholds for bmi that no shift reaches (and no correction), the next such day raises no
    bmi alarm; each window records the configuration it was judged with, and the earlier
    window is not recomputed."""
    clin, mle = deployed["clin"], deployed["mle"]
    serve_a_shifted_day(http, clin, clock, day=1)
    assert http.post("/api/v1/monitoring/run", json={}, headers=mle).status_code == 200
    before = http.get("/api/v1/monitoring/report", params={"deployment": DEPLOYMENT}, headers=clin)
    assert "bmi" in before.json()["result"]["dataset"]["drifted_features"]
    assert before.json()["result"]["configuration"] == {
        "thresholds_mode": "fixed",
        "correction": "holm",
        "min_samples": 30,
        "thresholds": {},
        "ignored_overrides": [],
    }

    lenient = {"ks": 1e-300, "psi": 1000.0, "jensenshannon": 1.0, "wasserstein": 1000.0}
    body = {
        "deployment": DEPLOYMENT,
        "thresholds": {"bmi": lenient, "not-a-feature": {"psi": 0.5}},
        "correction": "none",
    }
    assert http.put(URL, json=body, headers=mle).status_code == 200
    serve_a_shifted_day(http, clin, clock, day=2)
    ran = http.post("/api/v1/monitoring/run", json={}, headers=mle).json()
    assert len(ran["computed"]) == 1  # the new day only
    after = http.get(
        "/api/v1/monitoring/report", params={"deployment": DEPLOYMENT}, headers=clin
    ).json()
    assert after["start"] > before.json()["start"]
    result = after["result"]
    assert "bmi" not in result["dataset"]["drifted_features"]
    assert result["dataset"]["correction"] is None
    assert _bmi(after)["psi"]["threshold"] == 1000.0
    assert _bmi(after)["psi"]["statistic"] > 0.2  # drifted under the default 0.2
    assert not any(r["drifted"] for r in _bmi(after).values())
    recorded = result["configuration"]
    assert recorded["correction"] == "none"
    assert recorded["thresholds"]["bmi"]["psi"] == {"value": 1000.0, "source": "override"}
    assert recorded["ignored_overrides"] == ["not-a-feature.psi"]
    earlier = http.get(
        "/api/v1/monitoring/report",
        params={"deployment": DEPLOYMENT, "start": before.json()["start"]},
        headers=clin,
    ).json()
    assert earlier["result"] == before.json()["result"]
