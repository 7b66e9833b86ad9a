"""Login, tokens and their lifecycle, through the HTTP API."""

from __future__ import annotations

from datetime import timedelta

import httpx

from medops.core.permissions import Role
from medops.services import Services
from medops.testing import FixedClock, capture_audit
from tests.helpers.http import bearer
from tests.helpers.people import PASSWORD, make_user


def _login(http: httpx.Client, username: str, password: str) -> httpx.Response:
    return http.post("/api/v1/auth/token", data={"username": username, "password": password})


def test_password_flow_returns_a_bearer_token_that_authenticates(
    http: httpx.Client, services: Services
) -> None:
    """POST /auth/token with form fields gives {access_token, token_type: bearer}."""
    make_user(services, "alice", Role.DATA_SCIENTIST)
    response = _login(http, "alice", PASSWORD)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["access_token"].startswith("mdo_")
    me = http.get("/api/v1/auth/me", headers=bearer(body["access_token"])).json()
    assert me["username"] == "alice"
    assert me["role"] == "data_scientist"
    assert me["auth_method"] == "password"
    assert me["permissions"] == [
        "alerts:read",
        "alerts:respond",
        "breakglass:use",
        "data:checkout",
        "data:read",
        "data:write",
        "features:read",
        "features:write",
        "lineage:read",
        "models:card",
        "models:read",
        "models:write",
        "monitoring:read",
        "plans:write",
        "self",
        "slo:read",
        "tokens:create",
        "training:read",
        "training:run",
    ]


def test_failed_login_says_the_same_for_unknown_user_and_wrong_password(
    http: httpx.Client, services: Services
) -> None:
    """The answer never reveals whether the account exists; both tries are audited (a name
    with no account as 'unknown')."""
    make_user(services, "bob", Role.CLINICIAN)
    with capture_audit(services) as audit:
        wrong = _login(http, "bob", "not-the-password")
        unknown = _login(http, "nobody-here", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"] == "invalid username or password"
    failures = audit.find("auth.login")
    assert [(e.resource_id, e.outcome) for e in failures] == [
        ("bob", "failure"),
        ("unknown", "failure"),
    ]
    assert all(e.source_ip == "127.0.0.1" and e.request_id for e in failures)


def test_successful_login_is_audited_with_actor_method_and_origin(
    http: httpx.Client, services: Services
) -> None:
    """A login records who, how, from where and under which request id."""
    make_user(services, "carol", Role.AUDITOR)
    with capture_audit(services) as audit:
        response = http.post(
            "/api/v1/auth/token",
            data={"username": "carol", "password": PASSWORD},
            headers={"X-Request-ID": "login-req-1", "User-Agent": "ward-pc/1.0"},
        )
    assert response.status_code == 200
    (event,) = audit.find("auth.login")
    assert event.outcome == "success"
    assert event.actor_name == "carol"
    assert event.actor_role == "auditor"
    assert event.auth_method == "password"
    assert event.request_id == "login-req-1"
    assert event.user_agent == "ward-pc/1.0"
    assert event.occurred_at.tzinfo is not None


def test_disabled_account_cannot_log_in_and_its_tokens_stop_working(
    http: httpx.Client, services: Services, tokens: dict[Role, str]
) -> None:
    """Disabling revokes at once: the next request with the old token is 401."""
    token = make_user(services, "dave", Role.CLINICIAN)
    assert http.get("/api/v1/auth/me", headers=bearer(token)).status_code == 200
    disabled = http.post("/api/v1/users/dave/disable", headers=bearer(tokens[Role.ADMIN]))
    assert disabled.status_code == 200
    assert disabled.json()["active"] is False
    assert http.get("/api/v1/auth/me", headers=bearer(token)).status_code == 401
    assert _login(http, "dave", PASSWORD).status_code == 401


def test_api_token_create_list_revoke(http: httpx.Client, tokens: dict[Role, str]) -> None:
    """A token's secret is shown once; lists never show it; revocation applies next request."""
    own = bearer(tokens[Role.ML_ENGINEER])
    created = http.post("/api/v1/tokens", json={"name": "ci-pipeline"}, headers=own)
    assert created.status_code == 201
    issued = created.json()
    secret = issued["token"]
    me = http.get("/api/v1/auth/me", headers=bearer(secret)).json()
    assert me["auth_method"] == "token"
    assert me["token_id"] == issued["id"]
    listed = http.get("/api/v1/tokens", headers=own)
    assert secret not in listed.text
    assert issued["id"] in {t["id"] for t in listed.json()}
    revoked = http.delete(f"/api/v1/tokens/{issued['id']}", headers=own)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    answer = http.get("/api/v1/auth/me", headers=bearer(secret))
    assert answer.status_code == 401
    assert answer.json()["detail"] == "token has been revoked"


def test_token_expiry_is_enforced_with_the_injected_clock(
    http: httpx.Client, services: Services, clock: FixedClock
) -> None:
    """A token works until its expiry and is refused from that instant on."""
    owner = make_user(services, "erin", Role.DATA_SCIENTIST)
    expires = (clock.now() + timedelta(hours=2)).isoformat()
    issued = http.post("/api/v1/tokens", json={"expires_at": expires}, headers=bearer(owner)).json()
    clock.advance(timedelta(hours=1, minutes=59))
    assert http.get("/api/v1/auth/me", headers=bearer(issued["token"])).status_code == 200
    clock.advance(timedelta(minutes=1))
    answer = http.get("/api/v1/auth/me", headers=bearer(issued["token"]))
    assert answer.status_code == 401
    assert answer.json()["detail"] == "token has expired"


def test_token_expiry_in_the_past_or_too_far_is_refused(
    http: httpx.Client, tokens: dict[Role, str], clock: FixedClock
) -> None:
    """Expiry must be in the future and within the configured maximum."""
    own = bearer(tokens[Role.CLINICIAN])
    past = (clock.now() - timedelta(seconds=1)).isoformat()
    far = (clock.now() + timedelta(days=366)).isoformat()
    for value, reason in ((past, "must be in the future"), (far, "must be within 365 days")):
        response = http.post("/api/v1/tokens", json={"expires_at": value}, headers=own)
        assert response.status_code == 422
        assert response.json()["errors"] == [{"field": "expires_at", "reason": reason}]


def test_a_user_cannot_revoke_or_even_see_another_users_token(
    http: httpx.Client, tokens: dict[Role, str]
) -> None:
    """Someone else's token id answers 404, as if it did not exist; an admin may revoke it."""
    issued = http.post("/api/v1/tokens", json={}, headers=bearer(tokens[Role.CLINICIAN])).json()
    other = http.delete(f"/api/v1/tokens/{issued['id']}", headers=bearer(tokens[Role.AUDITOR]))
    assert other.status_code == 404
    assert http.get("/api/v1/auth/me", headers=bearer(issued["token"])).status_code == 200
    admin = http.delete(f"/api/v1/tokens/{issued['id']}", headers=bearer(tokens[Role.ADMIN]))
    assert admin.status_code == 200


def test_malformed_authorization_header_is_401(http: httpx.Client) -> None:
    """Only 'Bearer <token>' is accepted."""
    for header in ("Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer    ", "mdo_abc"):
        response = http.get("/api/v1/auth/me", headers={"Authorization": header})
        assert response.status_code == 401, header


def test_admin_issues_a_token_to_a_service_account(
    http: httpx.Client, services: Services, tokens: dict[Role, str]
) -> None:
    """A service account gets its token from an admin; it cannot mint its own."""
    issued = http.post(
        "/api/v1/users/user-service/tokens",
        json={"name": "lab-feed"},
        headers=bearer(tokens[Role.ADMIN]),
    )
    assert issued.status_code == 201
    assert issued.json()["username"] == "user-service"
    me = http.get("/api/v1/auth/me", headers=bearer(issued.json()["token"])).json()
    assert (me["username"], me["auth_method"]) == ("user-service", "token")
    own = http.post("/api/v1/tokens", json={}, headers=bearer(issued.json()["token"]))
    assert own.status_code == 403
    missing = http.post("/api/v1/users/ghost/tokens", headers=bearer(tokens[Role.ADMIN]))
    assert missing.status_code == 404
