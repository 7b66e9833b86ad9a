"""Edges of access control found in review: restrictions, scopes, sweeps and odd input."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import httpx
import pyotp
import pytest

from medops.core.permissions import Permission, Role
from medops.services import Services
from medops.testing import FixedClock, capture_audit
from tests.helpers.http import bearer, login
from tests.helpers.people import PASSWORD, SYSTEM_CTX, make_user
from tests.helpers.routes import concrete, protected_routes

REASON = "night shift incident: tracing who changed the model"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_restricted_login_is_refused_on_every_route_but_its_own_step(
    client_for: Callable[..., tuple[httpx.Client, Services]],
) -> None:
    """Enumerated from the app: with 'mfa-enrollment' pending, only self routes answer."""
    http, services = client_for(mfa_required_roles=("admin",))
    make_user(services, "boss", Role.ADMIN)
    for method, path, permission in protected_routes():
        if path.endswith(("/logout", "/revoke-all")):
            continue  # they would end the login this test walks with
        token = login(http, "boss", PASSWORD).json()["access_token"]
        response = http.request(method, concrete(path), json={}, headers=bearer(token))
        if permission is Permission.SELF:
            assert response.status_code not in (401, 403), (method, path, response.text)
        elif not path.startswith("/api/"):  # a console page: to the account page, which says
            assert response.status_code == 303, (method, path)
            assert response.headers["location"] == "/account"
        else:
            assert response.status_code == 403, (method, path)
            assert response.json()["type"] == "urn:medops:problem:action-required"


def test_changing_a_reset_password_leaves_mfa_enrollment_due(
    client_for: Callable[..., tuple[httpx.Client, Services]], clock: FixedClock
) -> None:
    """A reset ML engineer who changes the password must still enroll before anything else."""
    http, services = client_for(mfa_required_roles=("ml_engineer",))
    make_user(services, "mel", Role.ML_ENGINEER)
    services.identity.reset_password(SYSTEM_CTX, "mel", "temporary-pine-cone")
    token = login(http, "mel", "temporary-pine-cone").json()["access_token"]
    http.post(
        "/api/v1/auth/password",
        json={"current_password": "temporary-pine-cone", "new_password": "harbor-lilac-seven"},
        headers=bearer(token),
    )
    assert http.get("/api/v1/auth/me", headers=bearer(token)).json()["restriction"] == (
        "mfa-enrollment"
    )
    assert http.post("/api/v1/tokens", json={}, headers=bearer(token)).status_code == 403


def test_a_scoped_token_cannot_mint_a_wider_one(
    http: httpx.Client, tokens: dict[Role, str]
) -> None:
    """Scopes of a new token are bounded by the calling token, and default to its scopes."""
    scoped = http.post(
        "/api/v1/tokens",
        json={"scopes": ["tokens:create", "self"]},
        headers=bearer(tokens[Role.CLINICIAN]),
    ).json()["token"]
    minted = http.post("/api/v1/tokens", json={}, headers=bearer(scoped)).json()
    assert minted["scopes"] == ["self", "tokens:create"]
    wider = http.post("/api/v1/tokens", json={"scopes": ["breakglass:use"]}, headers=bearer(scoped))
    assert wider.status_code == 422


def test_tokens_are_issued_only_to_service_accounts(
    http: httpx.Client, tokens: dict[Role, str]
) -> None:
    """An admin cannot mint a token for a person (which would skip their MFA) or itself."""
    for target in ("user-ml-engineer", "user-admin"):
        response = http.post(f"/api/v1/users/{target}/tokens", headers=bearer(tokens[Role.ADMIN]))
        assert response.status_code == 422
        assert "service accounts" in response.json()["detail"]


def test_break_glass_respects_token_scopes_and_cannot_be_stacked(
    http: httpx.Client, tokens: dict[Role, str]
) -> None:
    """A self-scoped token stays self-scoped under a grant; a second grant is refused."""
    clinician = bearer(tokens[Role.CLINICIAN])
    narrow = http.post("/api/v1/tokens", json={"scopes": ["self"]}, headers=clinician).json()
    taken = http.post(
        "/api/v1/breakglass", json={"permission": "audit:read", "reason": REASON}, headers=clinician
    )
    assert taken.status_code == 201
    assert http.get("/api/v1/audit/events", headers=clinician).status_code == 200
    assert http.get("/api/v1/audit/events", headers=bearer(narrow["token"])).status_code == 403
    again = http.post(
        "/api/v1/breakglass", json={"permission": "audit:read", "reason": REASON}, headers=clinician
    )
    assert again.status_code == 409


@pytest.mark.parametrize("otp", ["¹²³⁴⁵⁶", "١٢٣٤٥٦", "12 34 5", "x" * 16])
def test_odd_one_time_codes_are_refused_not_crashed_on(
    http: httpx.Client, services: Services, clock: FixedClock, otp: str
) -> None:
    """Non-ASCII digits and junk are wrong codes (401 / 422), never a 500."""
    token = make_user(services, "odd", Role.CLINICIAN)
    secret = http.post(
        "/api/v1/auth/mfa/enroll", json={"password": PASSWORD}, headers=bearer(token)
    ).json()["secret"]
    confirm = http.post("/api/v1/auth/mfa/confirm", json={"code": otp}, headers=bearer(token))
    assert confirm.status_code == 422
    http.post(
        "/api/v1/auth/mfa/confirm",
        json={"code": pyotp.TOTP(secret).at(clock.now())},
        headers=bearer(token),
    )
    assert login(http, "odd", PASSWORD, otp).status_code == 401


def test_forged_revoked_and_expired_credentials_are_audited_as_denied(
    http: httpx.Client, services: Services, clock: FixedClock, tokens: dict[Role, str]
) -> None:
    """Each refused credential is counted in a 'denied' record naming the route and the
    reason (one per address, reason and minute)."""
    issued = http.post("/api/v1/tokens", json={}, headers=bearer(tokens[Role.AUDITOR])).json()
    http.delete(f"/api/v1/tokens/{issued['id']}", headers=bearer(tokens[Role.AUDITOR]))
    with capture_audit(services) as audit:
        http.get("/api/v1/users", headers=bearer("mdo_forged_token_value"))
        http.get("/api/v1/users", headers=bearer(issued["token"]))
        clock.advance(timedelta(minutes=16))
        http.get("/api/v1/users", headers=bearer(tokens[Role.AUDITOR]))
        services.refusals.flush(everything=True)
    denied = [
        (e.action, e.reason, (e.details or {}).get("routes"))
        for e in audit.events
        if e.outcome == "denied"
    ]
    route = {"GET /api/v1/users": 1}
    assert denied == [
        ("auth.refused", "invalid token", route),
        ("auth.refused", "token has been revoked", route),
        ("auth.refused", "session has expired after 15 min idle", route),
    ]


def test_sweep_ends_and_audits_logins_nobody_came_back_to(
    services: Services, clock: FixedClock
) -> None:
    """Expiry is recorded even when the client never returns (the server sweeps each minute)."""
    make_user(services, "gone", Role.CLINICIAN)
    make_user(services, "here", Role.CLINICIAN)
    clock.advance(timedelta(minutes=15))
    with capture_audit(services) as audit:
        assert services.logins.sweep_expired() == 2
        assert services.logins.sweep_expired() == 0
    assert [e.action for e in audit.events] == ["session.expire", "session.expire"]


def test_old_failures_do_not_add_up_to_a_lockout(
    http: httpx.Client, services: Services, clock: FixedClock
) -> None:
    """Four typos, a long pause, four more: the count restarted, no lock."""
    make_user(services, "typo", Role.CLINICIAN)
    for _ in range(4):
        login(http, "typo", "wrong-guess-000")
    clock.advance(timedelta(hours=2))
    for _ in range(4):
        login(http, "typo", "wrong-guess-000")
    assert login(http, "typo", PASSWORD).status_code == 200
