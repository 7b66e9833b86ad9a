"""Logins time out (idle and absolute); browser sessions use cookies with CSRF protection."""

from __future__ import annotations

from datetime import timedelta

import httpx

from medops.core.permissions import Role
from medops.services import Services
from medops.testing import FixedClock, capture_audit
from tests.helpers.http import bearer, login
from tests.helpers.people import PASSWORD, make_user


def test_idle_timeout_ends_a_login_and_is_audited_once(
    http: httpx.Client, services: Services, clock: FixedClock
) -> None:
    """Used every 14 minutes it lives on; left 15 minutes it expires, recorded once."""
    token = make_user(services, "rosa", Role.CLINICIAN)
    for _ in range(3):
        clock.advance(timedelta(minutes=14))
        assert http.get("/api/v1/auth/me", headers=bearer(token)).status_code == 200
    clock.advance(timedelta(minutes=15))
    with capture_audit(services) as audit:
        first = http.get("/api/v1/auth/me", headers=bearer(token))
        second = http.get("/api/v1/auth/me", headers=bearer(token))
    assert first.status_code == 401
    assert "15 min idle" in first.json()["detail"]
    assert second.status_code == 401
    assert [(e.action, e.reason) for e in audit.events if e.action == "session.expire"] == [
        ("session.expire", "session has expired after 15 min idle")
    ]


def test_absolute_lifetime_ends_even_an_active_login(
    http: httpx.Client, services: Services, clock: FixedClock
) -> None:
    """Twelve hours after login it ends, however busy."""
    token = make_user(services, "sam", Role.CLINICIAN)
    for _ in range(12 * 6 - 1):
        clock.advance(timedelta(minutes=10))
        assert http.get("/api/v1/auth/me", headers=bearer(token)).status_code == 200
    clock.advance(timedelta(minutes=10))
    ended = http.get("/api/v1/auth/me", headers=bearer(token))
    assert ended.status_code == 401
    assert "12 h maximum" in ended.json()["detail"]


def _session(http: httpx.Client, username: str) -> tuple[str, str]:
    response = http.post("/api/v1/auth/session", data={"username": username, "password": PASSWORD})
    assert response.status_code == 200
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "Secure" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    return http.cookies["medops_session"], response.json()["csrf_token"]


def test_browser_session_needs_its_csrf_token_for_changes(
    http: httpx.Client, services: Services
) -> None:
    """Reads work with the cookie alone; a change needs X-CSRF-Token; a wrong one is 403."""
    make_user(services, "tara", Role.DATA_SCIENTIST)
    _cookie, csrf = _session(http, "tara")
    assert http.get("/api/v1/auth/me").json()["username"] == "tara"
    with capture_audit(services) as audit:
        missing = http.post("/api/v1/tokens", json={})
        wrong = http.post("/api/v1/tokens", json={}, headers={"X-CSRF-Token": "guess"})
    for response in (missing, wrong):
        assert response.status_code == 403
        assert response.json()["type"] == "urn:medops:problem:csrf-failed"
    assert [e.outcome for e in audit.events] == ["denied", "denied"]
    right = http.post("/api/v1/tokens", json={}, headers={"X-CSRF-Token": csrf})
    assert right.status_code == 201


def test_forged_or_crossed_credentials_are_refused(http: httpx.Client, services: Services) -> None:
    """A made-up cookie, a session secret sent as a bearer token, and a bearer token sent as a
    cookie are all 401."""
    token = make_user(services, "uma", Role.CLINICIAN)
    cookie, _csrf = _session(http, "uma")
    http.cookies.clear()
    http.cookies.set("medops_session", "mdo_forged")
    assert http.get("/api/v1/auth/me").status_code == 401
    http.cookies.clear()
    assert http.get("/api/v1/auth/me", headers=bearer(cookie)).status_code == 401
    http.cookies.set("medops_session", token)
    assert http.get("/api/v1/auth/me").status_code == 401


def test_logout_and_logout_everywhere(http: httpx.Client, services: Services) -> None:
    """Logout ends this login; logout everywhere ends the rest; both are audited."""
    first = make_user(services, "vera", Role.AUDITOR)
    second = login(http, "vera", PASSWORD).json()["access_token"]
    third = login(http, "vera", PASSWORD).json()["access_token"]
    listed = http.get("/api/v1/auth/sessions", headers=bearer(first)).json()
    assert len(listed) == 3
    with capture_audit(services) as audit:
        assert http.post("/api/v1/auth/logout", headers=bearer(first)).status_code == 204
        assert http.get("/api/v1/auth/me", headers=bearer(first)).status_code == 401
        ended = http.post("/api/v1/auth/sessions/revoke-all", headers=bearer(second))
        services.refusals.flush(everything=True)
    assert ended.json() == {"sessions_ended": 2}
    assert http.get("/api/v1/auth/me", headers=bearer(third)).status_code == 401
    assert [a for a in audit.actions() if a.startswith("session.")] == [
        "session.logout",
        "session.revoke-all",
    ]
    (refused,) = audit.find("auth.refused")  # the request after logout, counted
    assert (refused.outcome, refused.reason) == ("denied", "session has ended")


def test_api_tokens_record_their_last_use(
    http: httpx.Client, services: Services, clock: FixedClock
) -> None:
    """last_used_at follows use (to within 30 s) and is listed with the token."""
    owner = make_user(services, "walt", Role.DATA_SCIENTIST)
    issued = http.post("/api/v1/tokens", json={"name": "job"}, headers=bearer(owner)).json()
    assert issued["last_used_at"] is None
    clock.advance(timedelta(hours=3))
    listed = {
        t["id"]: t for t in http.get("/api/v1/tokens", headers=bearer(issued["token"])).json()
    }
    assert listed[issued["id"]]["last_used_at"] == clock.now().isoformat().replace("+00:00", "Z")


def test_a_login_form_posted_from_another_site_is_refused(
    http: httpx.Client, services: Services
) -> None:
    """Login CSRF: an Origin other than the server's own gets 403 and no cookie."""
    make_user(services, "xena", Role.CLINICIAN)
    form = {"username": "xena", "password": PASSWORD}
    foreign = http.post(
        "/api/v1/auth/session", data=form, headers={"Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    assert foreign.json()["type"] == "urn:medops:problem:csrf-failed"
    assert "set-cookie" not in foreign.headers
    same = http.post("/api/v1/auth/session", data=form, headers={"Origin": "https://testserver"})
    assert same.status_code == 200
