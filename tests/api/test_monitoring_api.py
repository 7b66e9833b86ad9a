"""Monitoring over HTTP: a run computes each complete day of a deployment's predictions once,
against the version's reference profile; results and reports are served; permissions and bad
input are enforced; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
from sqlalchemy import select

from medops.audit.models import AuditEvent
from medops.context import SYSTEM_ACTOR, Context, Origin
from medops.monitoring.models import MonitoringProfile, MonitoringResult
from medops.services import Services
from medops.testing import FixedClock
from tests.api.test_models_api import people  # noqa: F401
from tests.api.test_serving_api import (  # noqa: F401
    DEPLOYMENT,
    deployed,
    predict,
    random_records,
)


def serve_a_day(http: httpx.Client, clin: dict[str, str], clock: FixedClock, n: int = 120) -> None:
    """``n`` predictions, each given its outcome (the predicted label), then the day ends."""
    body = {"records": [{"features": r, "patient_ref": f"p-{i}"} for i, r in
                        enumerate(random_records(n, seed=3))]}  # fmt: skip
    answer = predict(http, clin, body)
    assert answer.status_code == 200, answer.text
    for p in answer.json()["predictions"]:
        recorded = http.post(
            f"/api/v1/predictions/{p['id']}/outcome", json={"label": p["label"]}, headers=clin
        )
        assert recorded.status_code == 201, recorded.text
    clock.advance(timedelta(days=1))


def test_a_run_computes_each_complete_day_once_and_serves_it(
    http: httpx.Client,
    services: Services,
    clock: FixedClock,
    deployed: dict[str, dict[str, str]],  # noqa: F811
) -> None:
    """The first run builds the profile and computes the finished day; a second run finds
    nothing due; results, the JSON document and the HTML report (with its chart) are served;
    the run is audited."""
    clin, mle = deployed["clin"], deployed["mle"]
    serve_a_day(http, clin, clock)
    first = http.post("/api/v1/monitoring/run", json={"window": "day"}, headers=mle)
    assert first.status_code == 200, first.text
    computed = first.json()["computed"]
    assert len(computed) == 1
    assert computed[0]["deployment"] == DEPLOYMENT
    assert computed[0]["rows"] == 120
    assert computed[0]["labelled"] == 120
    again = http.post("/api/v1/monitoring/run", json={"window": "day"}, headers=mle)
    assert again.json()["computed"] == []
    with services.db.session() as session:
        assert len(session.scalars(select(MonitoringProfile)).all()) == 1
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.action == "monitoring.run")
        ).all()
    assert len(actions) == 1  # the empty second run changed nothing and recorded nothing

    results = http.get(
        "/api/v1/monitoring/results", params={"deployment": DEPLOYMENT}, headers=clin
    )
    assert results.status_code == 200, results.text
    assert [r["start"] for r in results.json()] == [computed[0]["start"]]
    document = http.get(
        "/api/v1/monitoring/report", params={"deployment": DEPLOYMENT}, headers=clin
    ).json()
    result = document["result"]
    assert set(result["features"]) == set(random_records(1)[0])
    assert result["performance"]["metrics"]["accuracy"]["value"] == 1.0  # outcome = label
    page = http.get(
        "/api/v1/monitoring/report",
        params={"deployment": DEPLOYMENT},
        headers=clin | {"accept": "text/html"},
    )
    assert page.headers["content-type"].startswith("text/html")
    assert "<svg" in page.text
    assert DEPLOYMENT in page.text


def test_monitoring_permissions_and_bad_input(
    http: httpx.Client,
    clock: FixedClock,
    deployed: dict[str, dict[str, str]],  # noqa: F811
) -> None:
    """Auditors read but do not run; a clinician reads; an unknown window kind is a 422 naming
    the field; a deployment with no computed window is a 404."""
    serve_a_day(http, deployed["clin"], clock, n=40)
    refused = http.post("/api/v1/monitoring/run", json={}, headers=deployed["aud"])
    assert refused.status_code == 403
    bad = http.post("/api/v1/monitoring/run", json={"window": "month"}, headers=deployed["mle"])
    assert bad.status_code == 422
    assert "window" in bad.text
    missing = http.get(
        "/api/v1/monitoring/report", params={"deployment": "nowhere"}, headers=deployed["aud"]
    )
    assert missing.status_code == 404
    assert http.post("/api/v1/monitoring/run", json={}, headers=deployed["mle"]).status_code == 200
    listed = http.get(
        "/api/v1/monitoring/results", params={"deployment": DEPLOYMENT}, headers=deployed["aud"]
    )
    assert listed.status_code == 200
    assert len(listed.json()) == 1


def test_concurrent_runs_store_each_window_once(
    http: httpx.Client,
    services: Services,
    clock: FixedClock,
    client_for: Callable[..., tuple[httpx.Client, Services]],
    deployed: dict[str, dict[str, str]],  # noqa: F811
) -> None:
    """Two runs at once (the scheduler of two replicas) store the day once between them:
    the later writer skips what the first stored, neither fails."""
    serve_a_day(http, deployed["clin"], clock, n=40)
    _, other = client_for()
    ctx = Context(actor=SYSTEM_ACTOR, origin=Origin(source_ip="local"))
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda s: s.monitoring.run(ctx, "day"), [services, other]))
    assert sorted(len(r.computed) for r in runs) == [0, 1]
    with services.db.session() as session:
        assert len(session.scalars(select(MonitoringResult)).all()) == 1
