"""Password policy, change, and admin reset that forces a change at next login."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from medops.auth.tables import User
from medops.config import Settings
from medops.context import Context, Origin
from medops.core.permissions import Role
from medops.services import Services, build_services
from medops.testing import FixedClock, capture_audit
from tests.helpers.http import bearer, login
from tests.helpers.people import PASSWORD, make_user


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short-one", "must be at least 12 characters"),
        ("Password1234", "is too common"),
        ("aaaaaaaaaaaaaaaa", "is too common"),
        ("xavier-is-the-best", "must not contain the username"),
        ("x" * 300, "must be at most 256 characters"),
    ],
)
def test_policy_refuses_weak_passwords_naming_the_rule(
    http: httpx.Client, tokens: dict[Role, str], password: str, reason: str
) -> None:
    """Each rule answers 422 with the password field and the rule it broke."""
    response = http.post(
        "/api/v1/users",
        json={"username": "xavier", "role": "clinician", "password": password},
        headers=bearer(tokens[Role.ADMIN]),
    )
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["field"] == "password"
    assert reason in error["reason"]


def test_change_checks_the_current_password_and_ends_other_logins(
    http: httpx.Client, services: Services
) -> None:
    """A wrong current password is 401 (and counted); the right one changes it."""
    token = make_user(services, "yara", Role.CLINICIAN)
    other = login(http, "yara", PASSWORD).json()["access_token"]
    wrong = http.post(
        "/api/v1/auth/password",
        json={"current_password": "not-it-at-all", "new_password": "violet-river-stone"},
        headers=bearer(token),
    )
    assert wrong.status_code == 401
    with capture_audit(services) as audit:
        changed = http.post(
            "/api/v1/auth/password",
            json={"current_password": PASSWORD, "new_password": "violet-river-stone"},
            headers=bearer(token),
        )
    assert changed.status_code == 204
    assert audit.actions() == ["user.password-change"]
    assert http.get("/api/v1/auth/me", headers=bearer(token)).status_code == 200
    assert http.get("/api/v1/auth/me", headers=bearer(other)).status_code == 401
    assert login(http, "yara", PASSWORD).status_code == 401
    assert login(http, "yara", "violet-river-stone").status_code == 200


def test_admin_reset_forces_a_change_before_anything_else(
    http: httpx.Client, services: Services, tokens: dict[Role, str]
) -> None:
    """After a reset the user's logins end; the next one may only change the password."""
    old = make_user(services, "zane", Role.DATA_SCIENTIST)
    reset = http.post(
        "/api/v1/users/zane/password-reset",
        json={"password": "temporary-kiwi-door"},
        headers=bearer(tokens[Role.ADMIN]),
    )
    assert reset.status_code == 200
    assert reset.json()["must_change_password"] is True
    assert http.get("/api/v1/auth/me", headers=bearer(old)).status_code == 401
    answer = login(http, "zane", "temporary-kiwi-door").json()
    assert answer["restriction"] == "password-change"
    token = answer["access_token"]
    blocked = http.post("/api/v1/tokens", json={}, headers=bearer(token))
    assert blocked.status_code == 403
    assert blocked.json()["type"] == "urn:medops:problem:action-required"
    http.post(
        "/api/v1/auth/password",
        json={"current_password": "temporary-kiwi-door", "new_password": "sunlit-archive-93"},
        headers=bearer(token),
    )
    assert http.post("/api/v1/tokens", json={}, headers=bearer(token)).status_code == 201
    assert login(http, "zane", "sunlit-archive-93").json()["restriction"] is None


def test_an_installation_hashes_at_owasp_costs_and_reads_any_costs(
    settings: Settings, clock: FixedClock, services: Services
) -> None:
    """build_services without a hashing given stores argon2id at OWASP's costs (19 MiB, 2
    passes, 1 lane), and logs in a user whose hash was made at other costs (the test suite's);
    the suite's cheap hashing is only what its fixtures inject."""
    make_user(services, "fast-hash", Role.CLINICIAN)
    installation = build_services(settings, clock=clock)
    try:
        make_user(installation, "owasp-hash", Role.CLINICIAN)
        ctx = Context(actor=None, origin=Origin(source_ip="127.0.0.1"))
        assert installation.logins.login(ctx, "fast-hash", PASSWORD, kind="login").secret
        with installation.db.transaction() as session:
            stored = {u.username: u.password_hash or "" for u in session.scalars(select(User))}
    finally:
        installation.close()
    assert stored["owasp-hash"].startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert stored["fast-hash"].startswith("$argon2id$v=19$m=8,t=1,p=1$")
