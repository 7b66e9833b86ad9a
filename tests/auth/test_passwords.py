"""Password policy, change, and admin reset that forces a change at next login."""

from __future__ import annotations

import httpx
import pytest

from medops.core.permissions import Role
from medops.services import Services
from medops.testing import capture_audit
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
