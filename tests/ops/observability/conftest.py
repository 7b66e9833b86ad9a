"""A real app exercised until every labelled series the dashboard and the rules read exists:
predictions (a cache, a canary rolled back automatically, a refusal, a shed), a monitoring
run before and after outcomes, an alert, a queued notification; then its /metrics, scraped
twice with traffic in between (and a second app's, which sheds)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import httpx
import pytest

from medops.services import Services
from medops.testing import FixedClock
from tests.helpers.alerting import PERSON, hooked
from tests.helpers.notify_outbox import queue
from tests.helpers.prometheus import Exposed, exposed_by
from tests.helpers.registry import DEPLOYMENT, approved, deploy, predict, random_records

CACHED = "cached"


def _tripped_canary(http: httpx.Client, people: dict[str, dict[str, str]]) -> None:
    """A canary on ``cached`` whose 0.001 ms p99 limit the next requests cannot meet: the
    server ends it by itself (medops_deployment_auto_rollbacks_total)."""
    candidate = approved(http, people, c=2.0)
    started = http.put(
        f"/api/v1/deployments/{CACHED}/canary",
        json={"version": candidate, "percent": 100, "reason": "tight limits",
              "limits": {"max_p99_ms": 0.001, "min_requests": 20}},
        headers=people["mle"],
    )  # fmt: skip
    assert started.status_code == 200, started.text
    records = random_records(20, seed=7)
    for n in range(3):
        body = {"records": [{"features": r, "patient_ref": f"c-{n}-{i}"} for i, r in
                            enumerate(records)]}  # fmt: skip
        assert predict(http, people["clin"], body, name=CACHED).status_code == 200
    for _ in range(200):
        state = http.get(f"/api/v1/deployments/{CACHED}", headers=people["mle"]).json()
        if state["canary_version"] is None:
            return
        time.sleep(0.02)
    raise AssertionError("the canary was not rolled back")


@pytest.fixture
def exposed(
    http: httpx.Client,
    services: Services,
    clock: FixedClock,
    deployed: dict[str, dict[str, str]],
    client_for: Callable[..., tuple[httpx.Client, Services]],
) -> Exposed:
    clin, mle = deployed["clin"], deployed["mle"]
    created = deploy(http, mle, name=CACHED, cache_size=100)
    assert created.status_code == 201, created.text
    body = {"records": [{"features": r, "patient_ref": f"p-{i}"} for i, r in
                        enumerate(random_records(40, seed=3))]}  # fmt: skip
    answer = predict(http, clin, body)
    assert answer.status_code == 200, answer.text
    for _ in range(2):  # the second time from the cache
        assert predict(http, clin, {"records": body["records"][:5]}, name=CACHED).status_code == 200
    refused = predict(http, clin, {"records": [{"features": {"age": "old"}}]})
    assert refused.status_code == 422, refused.text
    _tripped_canary(http, deployed)

    # A day later: monitoring computes the day (drift verdict, CBPE estimate); outcomes
    # arrive; the next run adds the realised accuracy and its baseline.
    clock.advance(timedelta(days=1))
    ran = http.post("/api/v1/monitoring/run", json={"window": "day"}, headers=mle)
    assert ran.status_code == 200, ran.text
    for p in answer.json()["predictions"]:
        recorded = http.post(
            f"/api/v1/predictions/{p['id']}/outcome", json={"label": p["label"]}, headers=clin
        )
        assert recorded.status_code == 201, recorded.text
    clock.advance(timedelta(minutes=5))
    ran = http.post("/api/v1/monitoring/run", json={"window": "day"}, headers=mle)
    assert ran.status_code == 200, ran.text

    hooked(services).set("drift_detected", 1, deployment=DEPLOYMENT)
    services.alerts.evaluate(PERSON)
    queue(services.db, clock.now(), 1, receiver="ops-hook")

    # A second app on the same database whose deadline is below the batching delay sheds.
    overloaded, _ = client_for(serving_deadline_ms=0.001)
    shed_scrapes = []
    for _ in range(2):
        shed = predict(overloaded, clin, {"records": body["records"][:1]})
        assert shed.status_code == 503, shed.text
        shed_scrapes.append(overloaded.get("/metrics").text)

    # Two scrapes of the first app, with traffic in between (for rates in Prometheus).
    first = http.get("/metrics").text
    assert predict(http, clin, {"records": body["records"][:3]}).status_code == 200
    assert predict(http, clin, {"records": body["records"][:5]}, name=CACHED).status_code == 200
    last = http.get("/metrics").text
    exposed = exposed_by(last, shed_scrapes[-1])
    return replace(exposed, scrapes=((first, last), tuple(shed_scrapes)))
