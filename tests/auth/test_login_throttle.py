"""Brute force: failed logins slow the account and block the address, never lock the account."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import httpx
from sqlalchemy import select

from medops.auth.tables import LoginThrottle
from medops.core.permissions import Role
from medops.services import Services
from medops.testing import FixedClock, capture_audit
from tests.helpers.http import bearer, login
from tests.helpers.people import PASSWORD, make_user

WRONG = "wrong-guess-000"


def _timed(clock: FixedClock, http: httpx.Client, username: str, password: str) -> float:
    """Seconds the server waited before judging this login (the fixed clock moves by it)."""
    before = clock.now()
    login(http, username, password)
    return (clock.now() - before).total_seconds()


def test_failures_slow_the_account_doubling_up_to_the_cap(
    http: httpx.Client, services: Services, clock: FixedClock
) -> None:
    """Three free failures, then 1, 2, 4, 8, 8 s before each next attempt is judged."""
    make_user(services, "judy", Role.CLINICIAN)
    waits = [_timed(clock, http, "judy", WRONG) for _ in range(8)]
    assert waits == [0, 0, 0, 1, 2, 4, 8, 8]


def test_the_right_password_gets_in_after_the_wait_and_ends_the_slowing(
    http: httpx.Client, services: Services, clock: FixedClock
) -> None:
    """Slowed, never locked: the right password answers 200 after the wait, and the next
    failure starts the count again."""
    make_user(services, "ivan", Role.CLINICIAN)
    for _ in range(6):
        assert login(http, "ivan", WRONG).status_code == 401
    before = clock.now()
    right = login(http, "ivan", PASSWORD)
    assert right.status_code == 200
    assert clock.now() - before == timedelta(seconds=8)
    assert _timed(clock, http, "ivan", WRONG) == 0


def test_a_wait_is_counted_from_the_last_failure(
    http: httpx.Client, services: Services, clock: FixedClock
) -> None:
    """Coming back after the delay has passed costs no wait; old failures are forgotten."""
    make_user(services, "kate", Role.AUDITOR)
    for _ in range(5):
        login(http, "kate", WRONG)  # the next one would wait 4 s
    clock.advance(timedelta(seconds=3))
    assert _timed(clock, http, "kate", PASSWORD) == 1
    for _ in range(5):
        login(http, "kate", WRONG)
    clock.advance(timedelta(hours=2))
    assert _timed(clock, http, "kate", WRONG) == 0  # counted from one again


def test_unknown_names_are_slowed_the_same_way(
    http: httpx.Client, services: Services, clock: FixedClock
) -> None:
    """The waits do not tell an attacker whether the account exists."""
    make_user(services, "real-user", Role.CLINICIAN)
    real = [_timed(clock, http, "real-user", WRONG) for _ in range(6)]
    ghost = [_timed(clock, http, "no-such-person", WRONG) for _ in range(6)]
    assert real == ghost == [0, 0, 0, 1, 2, 4]
    answers = {login(http, name, WRONG).json()["detail"] for name in ("real-user", "nobody")}
    assert answers == {"invalid username or password"}


def test_an_address_with_too_many_failures_is_blocked_not_the_account(
    http: httpx.Client,
    http_from: Callable[[str], httpx.Client],
    services: Services,
    clock: FixedClock,
) -> None:
    """After 20 failures an address gets 429 with Retry-After for 15 min, whatever it tries;
    another address logs into the same account; the block ends by itself."""
    make_user(services, "liam", Role.CLINICIAN)
    for n in range(20):
        assert login(http, f"guess{n}", WRONG).status_code == 401
    blocked = login(http, "liam", PASSWORD)
    assert blocked.status_code == 429
    assert blocked.headers["content-type"] == "application/problem+json"
    assert blocked.json()["type"] == "urn:medops:problem:too-many-attempts"
    assert blocked.headers["retry-after"] == "900"
    assert "your address" in blocked.json()["detail"]
    ward = http_from("10.1.2.3")
    assert (
        ward.post("/api/v1/auth/token", data={"username": "liam", "password": PASSWORD}).status_code
        == 200
    )
    clock.advance(timedelta(seconds=899))
    assert login(http, "liam", PASSWORD).status_code == 429
    clock.advance(timedelta(seconds=1))
    assert login(http, "liam", PASSWORD).status_code == 200


def test_failures_are_audited_one_by_one_and_the_block_is_counted(
    http: httpx.Client, services: Services, clock: FixedClock
) -> None:
    """Each judged failure has its record; refusals of a blocked address are counted per
    minute (auth.refused) instead."""
    with capture_audit(services) as audit:
        for n in range(20):
            login(http, f"name{n}", WRONG)
        for _ in range(30):
            assert login(http, "name0", WRONG).status_code == 429
        clock.advance(timedelta(minutes=1))
        services.refusals.flush()
    failures = audit.find("auth.login")
    assert len(failures) == 20
    assert failures[-1].reason == "bad credentials; address blocked for 900 s"
    (counted,) = audit.find("auth.refused")
    assert counted.details is not None
    assert counted.details["count"] == 30
    assert counted.details["routes"] == {"POST /api/v1/auth/token": 30}
    assert counted.source_ip == "127.0.0.1"


def test_admin_unlock_clears_the_slowing_and_is_audited(
    http: httpx.Client, services: Services, clock: FixedClock, tokens: dict[Role, str]
) -> None:
    """After an unlock the next attempt is judged at once; a second unlock is 409."""
    make_user(services, "mia", Role.CLINICIAN)
    for _ in range(5):
        login(http, "mia", WRONG)
    with capture_audit(services) as audit:
        unlocked = http.post("/api/v1/users/mia/unlock", headers=bearer(tokens[Role.ADMIN]))
    assert unlocked.status_code == 204
    (event,) = audit.find("user.unlock")
    assert event.details == {"before": {"failed_logins": 5}}
    assert _timed(clock, http, "mia", PASSWORD) == 0
    again = http.post("/api/v1/users/mia/unlock", headers=bearer(tokens[Role.ADMIN]))
    assert again.status_code == 409


def test_failed_reauthentications_lock_only_reauthentication(
    http: httpx.Client, http_from: Callable[[str], httpx.Client], services: Services
) -> None:
    """Five wrong current passwords lock password changes (429) but not logging in; outside
    login failures never lock re-authentication."""
    token = make_user(services, "nico", Role.CLINICIAN)
    outside = http_from("198.51.100.9")
    for _ in range(25):
        login(outside, "nico", WRONG)
    ok = {"current_password": PASSWORD, "new_password": "amber-field-sunrise"}
    assert http.post("/api/v1/auth/password", json=ok, headers=bearer(token)).status_code == 204
    login(http, "nico", "amber-field-sunrise")
    change = {"current_password": "not-it-at-all", "new_password": "violet-river-stone"}
    answers = [
        http.post("/api/v1/auth/password", json=change, headers=bearer(token)).status_code
        for _ in range(6)
    ]
    assert answers == [401, 401, 401, 401, 401, 429]
    assert login(http, "nico", "amber-field-sunrise").status_code == 200


def test_old_counters_are_swept(services: Services, clock: FixedClock) -> None:
    """Counters with no failure for longer than any of them counts are deleted."""
    make_user(services, "omar", Role.CLINICIAN)
    clock.advance(timedelta(hours=2))
    assert services.logins.sweep_throttle() >= 1
    with services.db.session() as session:
        assert session.scalars(select(LoginThrottle)).all() == []


def test_oversized_credentials_are_refused_cleanly(http: httpx.Client) -> None:
    """A 10 kB username or password is a 422 problem, not a hash of 10 kB or a 500."""
    huge = login(http, "u" * 10_000, "p")
    assert huge.status_code == 422
    assert huge.json()["errors"][0]["field"] == "username"
    big_password = login(http, "someone", "p" * 5000)
    assert big_password.status_code == 422
