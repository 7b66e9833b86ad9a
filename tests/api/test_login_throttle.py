"""Brute force: failed logins lock a username for a growing period, revealing nothing."""

from __future__ import annotations

from datetime import timedelta

import httpx

from medops.auth.permissions import Role
from medops.services import Services
from medops.testing import FixedClock, capture_audit
from tests.api.conftest import bearer, login
from tests.conftest import PASSWORD, make_user


def test_five_failures_lock_the_username_even_for_the_right_password(
    http: httpx.Client, services: Services, clock: FixedClock
) -> None:
    """After the threshold, 429 with Retry-After; the lock ends by itself after 60 s."""
    make_user(services, "ivan", Role.CLINICIAN)
    for _ in range(4):
        assert login(http, "ivan", "wrong-guess-000").status_code == 401
    fifth = login(http, "ivan", "wrong-guess-000")
    assert fifth.status_code == 401
    locked = login(http, "ivan", PASSWORD)
    assert locked.status_code == 429
    assert locked.headers["content-type"] == "application/problem+json"
    assert locked.json()["type"] == "urn:medops:problem:too-many-attempts"
    assert int(locked.headers["retry-after"]) == 61
    clock.advance(timedelta(seconds=59))
    assert login(http, "ivan", PASSWORD).status_code == 429
    clock.advance(timedelta(seconds=2))
    assert login(http, "ivan", PASSWORD).status_code == 200


def test_each_further_lockout_doubles_up_to_the_maximum(
    http: httpx.Client, services: Services, clock: FixedClock
) -> None:
    """60 s, 120 s, 240 s, ... capped at the configured maximum (3600 s)."""
    make_user(services, "judy", Role.CLINICIAN)
    waits = []
    for _ in range(8):
        for _ in range(5):
            login(http, "judy", "wrong-guess-000")
        response = login(http, "judy", PASSWORD)
        waits.append(int(response.headers["retry-after"]) - 1)
        clock.advance(timedelta(seconds=waits[-1] + 1))
    assert waits == [60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_unknown_usernames_lock_the_same_way(http: httpx.Client) -> None:
    """A lockout does not tell an attacker whether the account exists."""
    answers = [login(http, "no-such-person", "wrong-guess-000") for _ in range(6)]
    assert [a.status_code for a in answers] == [401] * 5 + [429]
    assert answers[0].json()["detail"] == "invalid username or password"


def test_a_success_resets_the_count(http: httpx.Client, services: Services) -> None:
    """Four failures, a success, four more failures: no lock."""
    make_user(services, "kate", Role.AUDITOR)
    for _ in range(4):
        login(http, "kate", "wrong-guess-000")
    assert login(http, "kate", PASSWORD).status_code == 200
    for _ in range(4):
        login(http, "kate", "wrong-guess-000")
    assert login(http, "kate", PASSWORD).status_code == 200


def test_admin_unlocks_and_every_step_is_audited(
    http: httpx.Client, services: Services, tokens: dict[Role, str]
) -> None:
    """Failures, the locked attempt and the unlock are all in the audit trail."""
    make_user(services, "liam", Role.CLINICIAN)
    with capture_audit(services) as audit:
        for _ in range(5):
            login(http, "liam", "wrong-guess-000")
        login(http, "liam", PASSWORD)
        unlocked = http.post("/api/v1/users/liam/unlock", headers=bearer(tokens[Role.ADMIN]))
        after = login(http, "liam", PASSWORD)
    assert unlocked.status_code == 204
    assert after.status_code == 200
    reasons = [e.reason for e in audit.find("auth.login")]
    assert reasons[:6] == [
        "bad credentials",
        "bad credentials",
        "bad credentials",
        "bad credentials",
        "bad credentials; locked for 60 s",
        "locked after repeated failures",
    ]
    assert [e.outcome for e in audit.find("user.unlock")] == ["success"]
    again = http.post("/api/v1/users/liam/unlock", headers=bearer(tokens[Role.ADMIN]))
    assert again.status_code == 409


def test_oversized_credentials_are_refused_cleanly(http: httpx.Client) -> None:
    """A 10 kB username or password is a 422 problem, not a hash of 10 kB or a 500."""
    huge = login(http, "u" * 10_000, "p")
    assert huge.status_code == 422
    assert huge.json()["errors"][0]["field"] == "username"
    big_password = login(http, "someone", "p" * 5000)
    assert big_password.status_code == 422
