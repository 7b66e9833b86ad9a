"""The predict fast lane and the auth cache: the same answers, refusals and audit records as
the route, local revocations at once, other processes' changes within the cache time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update

from medops.api.fastlane import PredictFastLane
from medops.audit.service import exempt_from_audit_guard
from medops.audit.tables import AuditEvent
from medops.auth import tokens
from medops.auth.tables import ApiToken
from medops.services import Services
from medops.testing import FixedClock
from tests.helpers.registry import DEPLOYMENT, predict, random_records

PATH = f"/api/v1/deployments/{DEPLOYMENT}/predict"


def lane(app: FastAPI) -> PredictFastLane:
    """The lane of the app's request middleware."""
    for middleware in app.user_middleware:
        found = middleware.kwargs.get("fast_lane")
        if isinstance(found, PredictFastLane):
            return found
    raise AssertionError("the app has no fast lane")


def comparable(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """An answer without what differs per request (ids and timings)."""
    return [
        {k: v for k, v in p.items() if k not in {"id", "cached"}} for p in answer["predictions"]
    ]


def test_lane_and_route_give_the_same_answer(
    app: FastAPI,
    http: httpx.Client,
    client_for: Callable[..., tuple[httpx.Client, Services]],
    deployed: dict[str, dict[str, str]],
) -> None:
    """A predict request with a bearer token is taken by the lane; the same body sent to a
    server with the lane off (MEDOPS_SERVING_FAST_LANE=false) gets the same answer."""
    clin = deployed["clin"]
    fast = lane(app)
    framework, _ = client_for(serving_fast_lane=False)
    body = {"records": [{"features": r} for r in random_records(5)]}
    taken = fast.stats.taken
    by_lane = predict(http, clin, body)
    assert by_lane.status_code == 200, by_lane.text
    assert fast.stats.taken == taken + 1
    by_route = predict(framework, clin, body)
    assert by_route.status_code == 200, by_route.text
    assert comparable(by_lane.json()) == comparable(by_route.json())
    assert by_lane.headers["content-type"] == by_route.headers["content-type"]
    for fhir in (http, framework):
        answer = fhir.post(
            PATH,
            json={"features": random_records(1)[0], "patient_ref": "p-1"},
            headers=clin | {"accept": "application/fhir+json"},
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/fhir+json"
        assert answer.json()["resourceType"] == "RiskAssessment"


def test_lane_refusals_equal_the_route_refusals(
    app: FastAPI,
    http: httpx.Client,
    client_for: Callable[..., tuple[httpx.Client, Services]],
    services: Services,
    deployed: dict[str, dict[str, str]],
) -> None:
    """Bad input, an unknown deployment, broken JSON and a bad token get the same status and
    problem from the lane as from the framework's route, each with an audit record that is
    not a success (a bad token's refusal is counted for its address and minute, on each
    side); nothing is logged as a prediction."""
    clin = deployed["clin"]
    framework, framework_services = client_for(serving_fast_lane=False)
    cases = [
        (clin, PATH, b'{"features": {"age": "old"}}', 422),
        (clin, "/api/v1/deployments/nowhere/predict", b'{"features": {}}', 404),
        (clin, PATH, b"{not json", 400),
        ({"Authorization": "Bearer mdo_not-a-token"}, PATH, b'{"features": {}}', 401),
    ]
    fast = lane(app)
    for headers, path, content, status in cases:
        taken = fast.stats.taken
        counted = (services.refusals.pending(), framework_services.refusals.pending())
        json_headers = headers | {"content-type": "application/json"}
        by_lane = http.post(path, content=content, headers=json_headers)
        assert fast.stats.taken == taken + 1, path
        by_route = framework.post(path, content=content, headers=json_headers)
        assert by_lane.status_code == status, by_lane.text
        assert by_route.status_code == status, by_route.text
        assert by_lane.headers["content-type"] == "application/problem+json"
        lane_problem, route_problem = by_lane.json(), by_route.json()
        for key in ("request_id", "instance"):
            lane_problem.pop(key, None)
            route_problem.pop(key, None)
        assert lane_problem == route_problem
        ids = [by_lane.headers["x-request-id"], by_route.headers["x-request-id"]]
        with services.db.session() as session:
            audited = session.scalars(
                select(AuditEvent.outcome).where(AuditEvent.request_id.in_(ids))
            ).all()
        if status == 401:
            assert audited == []
            assert services.refusals.pending() == counted[0] + 1
            assert framework_services.refusals.pending() == counted[1] + 1
            continue
        assert len(audited) == 2, (path, audited)
        assert "success" not in audited, (path, audited)
    with services.db.session() as session:
        logged = session.scalars(
            select(AuditEvent.action).where(AuditEvent.action == "prediction.create")
        ).all()
    assert logged == []


def test_a_revoked_token_is_refused_at_once(
    http: httpx.Client,
    services: Services,
    deployed: dict[str, dict[str, str]],
) -> None:
    """A token that was just used (so cached) and is then revoked through this server is
    refused on the very next request, by the lane, with 401."""
    clin = deployed["clin"]
    record = {"features": random_records(1)[0]}
    assert predict(http, clin, record).status_code == 200
    token_id = _token(services, clin).id
    assert http.delete(f"/api/v1/tokens/{token_id}", headers=clin).status_code == 200
    refused = predict(http, clin, record)
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]


def test_a_restricted_or_unpermitted_caller_is_left_to_the_route(
    app: FastAPI,
    http: httpx.Client,
    deployed: dict[str, dict[str, str]],
) -> None:
    """A role without ``predict`` is declined by the lane; the route answers 403. A name the
    route's pattern refuses (a trailing newline) is declined too: the route answers 422."""
    fast = lane(app)
    declined = fast.stats.declined
    answer = predict(http, deployed["aud"], {"features": random_records(1)[0]})
    assert answer.status_code == 403
    assert fast.stats.declined == declined + 1
    odd = http.post(
        f"/api/v1/deployments/{DEPLOYMENT}%0A/predict",
        json={"features": random_records(1)[0]},
        headers=deployed["clin"],
    )
    assert odd.status_code == 422
    assert fast.stats.declined == declined + 2


def test_a_body_over_the_limit_goes_to_the_route(
    client_for: Callable[..., tuple[httpx.Client, Services]],
    deployed: dict[str, dict[str, str]],
) -> None:
    """A declared body over the limit is declined untouched: the route answers 413."""
    small, _ = client_for(max_request_bytes=1024)
    clin = deployed["clin"]
    big = b'{"features": {"age": 1' + b" " * 2000 + b"}}"
    answer = small.post(PATH, content=big, headers=clin | {"content-type": "application/json"})
    assert answer.status_code == 413


def test_another_process_revoking_applies_within_the_cache_time(
    client_for: Callable[..., tuple[httpx.Client, Services]],
    services: Services,
    clock: FixedClock,
    deployed: dict[str, dict[str, str]],
) -> None:
    """A server caching for 0.3 s still accepts a token another process revoked until its
    entry lapses (on the injected clock, so a slow machine cannot lapse it early), then
    refuses it; with the cache off it refuses at once."""
    cached, cached_services = client_for(auth_cache_seconds=0.3)
    uncached, _ = client_for(auth_cache_seconds=0)
    clin = deployed["clin"]
    record = {"features": random_records(1)[0]}
    assert predict(cached, clin, record).status_code == 200
    assert predict(uncached, clin, record).status_code == 200
    digest = _token(services, clin).token_hash
    _revoke_elsewhere(services, digest)
    assert predict(uncached, clin, record).status_code == 401
    assert cached_services.logins.cache.get(digest) is not None
    assert predict(cached, clin, record).status_code == 200
    clock.advance(timedelta(seconds=0.35))
    assert predict(cached, clin, record).status_code == 401


def _token(services: Services, headers: dict[str, str]) -> ApiToken:
    digest = tokens.digest(headers["Authorization"].removeprefix("Bearer "))
    with services.db.session() as session:
        return session.scalars(select(ApiToken).where(ApiToken.token_hash == digest)).one()


def _revoke_elsewhere(services: Services, digest: str) -> None:
    """Revoke a token as another process would: through other services on the same database
    (the servers under test hear nothing of it)."""
    with services.db.transaction() as session:
        exempt_from_audit_guard(session)
        session.execute(
            update(ApiToken)
            .where(ApiToken.token_hash == digest)
            .values(revoked_at=services.clock.now())
        )
