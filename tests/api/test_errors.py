"""Every error is RFC 9457 problem+json naming the problem; no stack trace reaches a client."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import httpx
import pytest
from fastapi import Depends, FastAPI

from medops.api.app import create_app
from medops.api.deps import public
from medops.client.embedded import EmbeddedTransport
from medops.core.permissions import Role
from medops.services import Services
from medops.testing import capture_audit
from tests.helpers.http import bearer, problem
from tests.helpers.registry import register

PROBLEM = "application/problem+json"


def test_malformed_json_is_400_problem_naming_the_body(
    http: httpx.Client, tokens: dict[Role, str]
) -> None:
    """A body that is not JSON gets 400 malformed-request, not a 500 or a bare 422."""
    response = http.post(
        "/api/v1/users",
        content=b'{"username": "x", ',
        headers={**bearer(tokens[Role.ADMIN]), "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == "urn:medops:problem:malformed-request"
    assert body["title"] == "Malformed request body"
    assert body["status"] == 400
    assert "not valid JSON" in body["detail"]
    assert body["errors"][0]["field"] == "body"


def test_wrong_field_type_is_422_problem_naming_each_field(
    http: httpx.Client, tokens: dict[Role, str]
) -> None:
    """Each bad field is listed with its reason; input values are never echoed back."""
    response = http.post(
        "/api/v1/users",
        json={"username": 12345, "role": "surgeon", "password": "secret-value-not-echoed"},
        headers=bearer(tokens[Role.ADMIN]),
    )
    assert response.status_code == 422
    body = response.json()
    assert body["type"] == "urn:medops:problem:invalid-input"
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"username", "role"}
    assert "secret-value-not-echoed" not in response.text
    assert "surgeon" not in response.text


def test_unknown_route_is_404_problem(http: httpx.Client) -> None:
    """An unknown path gets a problem naming the method and path."""
    response = http.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == "urn:medops:problem:not-found"
    assert "/api/v1/no-such-thing" in body["detail"]


def test_wrong_method_is_405_problem(http: httpx.Client) -> None:
    """A known path with an unsupported method gets 405 problem+json."""
    response = http.put("/healthz")
    assert response.status_code == 405
    assert response.json()["type"] == "urn:medops:problem:method-not-allowed"


def test_password_policy_violation_names_the_field(
    http: httpx.Client, tokens: dict[Role, str]
) -> None:
    """A domain rule broken in the service layer comes back as 422 naming the field."""
    response = http.post(
        "/api/v1/users",
        json={"username": "shorty", "role": "clinician", "password": "short"},
        headers=bearer(tokens[Role.ADMIN]),
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "password", "reason": "must be at least 12 characters"}
    ]


def test_duplicate_username_is_409_and_changes_nothing(
    http: httpx.Client, tokens: dict[Role, str]
) -> None:
    """Creating an existing user is a conflict; the first account is untouched."""
    body = {"username": "dup-user", "role": "clinician", "password": "first-password-123"}
    assert (
        http.post("/api/v1/users", json=body, headers=bearer(tokens[Role.ADMIN])).status_code == 201
    )
    again = {**body, "role": "admin"}
    response = http.post("/api/v1/users", json=again, headers=bearer(tokens[Role.ADMIN]))
    assert response.status_code == 409
    assert response.json()["errors"] == [{"field": "username", "reason": "already taken"}]
    users = http.get("/api/v1/users", headers=bearer(tokens[Role.ADMIN])).json()
    assert [u["role"] for u in users if u["username"] == "dup-user"] == ["clinician"]


def test_unexpected_exception_is_500_problem_without_a_stack_trace(app: FastAPI) -> None:
    """A bug becomes a generic 500 problem with the request id; the trace stays in the log."""

    def explode() -> None:
        raise RuntimeError("secret internal detail at /srv/medops/thing.py line 12")

    app.add_api_route("/boom", explode, dependencies=[Depends(public)])
    with httpx.Client(transport=EmbeddedTransport(app), base_url="http://t") as client:
        response = client.get("/boom", headers={"X-Request-ID": "req-boom-1"})
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == "urn:medops:problem:internal-error"
    assert body["request_id"] == "req-boom-1"
    assert "secret internal detail" not in response.text
    assert "Traceback" not in response.text


def test_request_id_is_echoed_when_valid_and_generated_otherwise(http: httpx.Client) -> None:
    """X-Request-ID is accepted when well-formed, replaced when not, and always returned."""
    given = http.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    generated = http.get("/healthz")
    assert len(generated.headers["x-request-id"]) == 32
    hostile = http.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces" + "x" * 200})
    assert hostile.headers["x-request-id"] != "bad id\twith spaces" + "x" * 200
    assert len(hostile.headers["x-request-id"]) == 32


def test_problem_carries_the_request_id(http: httpx.Client) -> None:
    """Clients can quote the request id of a failure to operators."""
    response = http.get("/api/v1/users", headers={"X-Request-ID": "trace-me-7"})
    assert response.json()["request_id"] == "trace-me-7"


def test_access_is_checked_before_the_body_is_judged(
    http: httpx.Client, tokens: dict[Role, str]
) -> None:
    """A malformed body gets 401 without a token and 403 for the wrong role, never 400/422."""
    broken = {"content-type": "application/json"}
    anonymous = http.post("/api/v1/users", content=b"{bad", headers=broken)
    assert anonymous.status_code == 401
    clinician = http.post(
        "/api/v1/users", content=b"{bad", headers={**broken, **bearer(tokens[Role.CLINICIAN])}
    )
    assert clinician.status_code == 403
    wrong_type = http.post(
        "/api/v1/users", json={"username": 5}, headers=bearer(tokens[Role.AUDITOR])
    )
    assert wrong_type.status_code == 403
    admin = http.post(
        "/api/v1/users", content=b"{bad", headers={**broken, **bearer(tokens[Role.ADMIN])}
    )
    assert admin.status_code == 400


def test_malformed_body_by_an_authenticated_caller_is_audited_under_their_name(
    http: httpx.Client, services: Services, tokens: dict[Role, str]
) -> None:
    """The failure record names the admin who sent it, not an anonymous actor."""
    with capture_audit(services) as audit:
        http.post(
            "/api/v1/users",
            content=b"{bad",
            headers={"content-type": "application/json", **bearer(tokens[Role.ADMIN])},
        )
    (event,) = audit.events
    assert (event.action, event.outcome, event.actor_name) == (
        "user.create",
        "failure",
        "user-admin",
    )


@pytest.mark.parametrize(
    "body",
    [b'{"username": "\xff\xfe"}', b"[" * 100_000 + b"]" * 100_000],
    ids=["not-utf8", "nested-too-deep"],
)
def test_unparseable_bodies_are_400_malformed_request(
    http: httpx.Client, tokens: dict[Role, str], body: bytes
) -> None:
    """Bodies that are not decodable JSON are malformed (400), not invalid (422) or 500."""
    response = http.post(
        "/api/v1/users",
        content=body,
        headers={"content-type": "application/json", **bearer(tokens[Role.ADMIN])},
    )
    assert response.status_code == 400
    assert response.json()["type"] == "urn:medops:problem:malformed-request"


def test_body_over_the_limit_is_413_before_it_is_buffered(
    services: Services, tokens: dict[Role, str]
) -> None:
    """Declared and streamed bodies over MEDOPS_MAX_REQUEST_BYTES get 413 problem+json."""
    small = dataclasses.replace(
        services, settings=services.settings.model_copy(update={"max_request_bytes": 4096})
    )
    app = create_app(services=small, owns_services=False)
    admin = bearer(tokens[Role.ADMIN])
    chunks_sent = 0

    def stream() -> Iterator[bytes]:
        nonlocal chunks_sent
        for _ in range(1000):
            chunks_sent += 1
            yield b" " * 1024

    with httpx.Client(transport=EmbeddedTransport(app), base_url="http://t") as client:
        declared = client.post("/api/v1/users", json={"username": "x" * 10_000}, headers=admin)
        streamed = client.post(
            "/api/v1/users", content=stream(), headers={**admin, "content-type": "application/json"}
        )
        anonymous = client.post("/api/v1/users", json={"username": "x" * 10_000})
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json()["type"] == "urn:medops:problem:request-too-large"
    assert anonymous.status_code == 401


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_values_the_database_refuses_are_422_and_audited(
    http: httpx.Client, services: Services, tokens: dict[Role, str]
) -> None:
    """A NUL character (PostgreSQL refuses it) or an int64 overflow is bad input, not an outage."""
    with capture_audit(services) as audit:
        login = http.post("/api/v1/auth/token", data={"username": "a\x00b", "password": "x"})
        revoke = http.delete("/api/v1/tokens/tok%00x", headers=bearer(tokens[Role.ADMIN]))
    assert login.status_code in (401, 422)
    assert revoke.status_code in (404, 422)
    assert [e.action for e in audit.events] == ["auth.login", "token.revoke"]
    assert all(e.outcome == "failure" for e in audit.events)
    huge = http.get(
        "/api/v1/audit/events", params={"before": 2**63}, headers=bearer(tokens[Role.AUDITOR])
    )
    assert huge.status_code == 422


@pytest.mark.usefixtures("model")
def test_a_mistyped_key_names_the_field_it_may_have_meant(
    http: httpx.Client, people: dict[str, dict[str, str]]
) -> None:
    """An unknown card field close to a real one says which ("did you mean"); one far from
    every field lists them; both as 422s naming the key."""
    version = register(http, people["ds"])
    assert version.status_code == 201, version.text
    url = "/api/v1/models/diabetes-risk/versions/1/card"
    close = problem(
        http.patch(url, json={"intended_uze": "triage"}, headers=people["clin"]), 422,
        "invalid-input",
    )  # fmt: skip
    assert close["errors"] == [
        {"field": "intended_uze", "reason": "unknown field; did you mean 'intended_use'?"}
    ]
    far = problem(http.patch(url, json={"zzz": "x"}, headers=people["clin"]), 422, "invalid-input")
    assert far["errors"][0]["reason"].startswith("unknown field; the fields are: ")
    nested = problem(
        http.put(
            "/api/v1/models/diabetes-risk/policy",
            json={"min_aurco": 0.8},
            headers=people["mle"],
        ),
        422,
        "invalid-input",
    )
    assert nested["errors"][0]["reason"] == "unknown field; did you mean 'min_auroc'?"
