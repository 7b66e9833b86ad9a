"""Attack stories against credentials and abuse (issue 14), end to end over HTTP.

Each test replays what the outside attacker did and pins what the server does now: tokens die
with the credentials, a stolen token cannot enroll MFA, TOTP secrets are sealed at rest,
guessing from outside cannot lock an account, refusals cannot flood the audit trail, a
password typed as a username is not stored, and break-glass grants do not stack.
"""

from __future__ import annotations

import base64
import os
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pyotp
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import func, select, text

from medops import admin
from medops.api.app import create_app
from medops.auth import passwords
from medops.auth.tables import ApiToken, BreakGlassGrant, LoginThrottle, User
from medops.client.embedded import EmbeddedTransport
from medops.config import Settings
from medops.core.permissions import Role
from medops.db import migrate
from medops.db.engine import Database
from medops.services import Services, build_services
from medops.testing import FixedClock, capture_audit
from tests.helpers.people import PASSWORD, make_user

WRONG = "wrong-guess-000"
REASON = "ED patient deteriorating; need the model's audit history"


NO_TOKEN = (
    "authentication required: log in with 'medops login' "
    "(API: send 'Authorization: Bearer <token>')"
)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _login(
    http: httpx.Client, username: str, password: str, otp: str | None = None
) -> httpx.Response:
    form = {"username": username, "password": password} | ({"otp": otp} if otp else {})
    return http.post("/api/v1/auth/token", data=form)


def _api_token(http: httpx.Client, login_token: str) -> str:
    answer = http.post("/api/v1/tokens", json={"name": "script"}, headers=_bearer(login_token))
    assert answer.status_code == 201, answer.text
    return str(answer.json()["token"])


def _enroll(http: httpx.Client, token: str, clock: FixedClock) -> str:
    """Enroll TOTP for the token's user (password given again); returns the secret."""
    started = http.post(
        "/api/v1/auth/mfa/enroll", json={"password": PASSWORD}, headers=_bearer(token)
    )
    assert started.status_code == 200, started.text
    secret = str(started.json()["secret"])
    code = pyotp.TOTP(secret).at(clock.now())
    confirmed = http.post("/api/v1/auth/mfa/confirm", json={"code": code}, headers=_bearer(token))
    assert confirmed.status_code == 200, confirmed.text
    return secret


def _raw(services: Services, sql: str, **params: object) -> list[tuple[object, ...]]:
    with services.db.session() as session:
        return [tuple(row) for row in session.execute(text(sql), params)]


def _me(http: httpx.Client, token: str) -> int:
    return http.get("/api/v1/auth/me", headers=_bearer(token)).status_code


# --- tokens die with the credentials ------------------------------------------------------


def test_an_admin_password_reset_revokes_the_users_api_tokens(
    http: httpx.Client, services: Services, tokens: dict[Role, str]
) -> None:
    """Attack: an API token minted before a password reset kept working. Now it is revoked,
    and the reset's record counts it."""
    login_token = make_user(services, "nurse", Role.CLINICIAN)
    script = _api_token(http, login_token)
    with capture_audit(services) as audit:
        reset = http.post(
            "/api/v1/users/nurse/password-reset",
            json={"password": "temporary-kiwi-door"},
            headers=_bearer(tokens[Role.ADMIN]),
        )
    assert reset.status_code == 200
    assert _me(http, script) == 401
    assert _me(http, login_token) == 401
    (event,) = audit.find("user.password-reset")
    assert event.details is not None
    assert (event.details["tokens_revoked"], event.details["logins_ended"]) == (1, 1)


def test_changing_ones_password_revokes_ones_api_tokens(
    http: httpx.Client, services: Services
) -> None:
    """A password change revokes every API token of the account; the login that made the
    change goes on."""
    login_token = make_user(services, "yara", Role.CLINICIAN)
    scripts = [_api_token(http, login_token) for _ in range(2)]
    with capture_audit(services) as audit:
        changed = http.post(
            "/api/v1/auth/password",
            json={"current_password": PASSWORD, "new_password": "violet-river-stone"},
            headers=_bearer(login_token),
        )
    assert changed.status_code == 204
    assert [_me(http, s) for s in scripts] == [401, 401]
    assert _me(http, login_token) == 200
    (event,) = audit.find("user.password-change")
    assert event.details == {"logins_ended": 0, "tokens_revoked": 2}


def test_an_mfa_reset_revokes_the_users_api_tokens(
    http: httpx.Client, services: Services, clock: FixedClock, tokens: dict[Role, str]
) -> None:
    """A lost authenticator may be in someone's hands: its reset ends the tokens too."""
    login_token = make_user(services, "pia", Role.AUDITOR)
    _enroll(http, login_token, clock)
    script = _api_token(http, login_token)
    with capture_audit(services) as audit:
        reset = http.post("/api/v1/users/pia/mfa-reset", headers=_bearer(tokens[Role.ADMIN]))
    assert reset.status_code == 200
    assert _me(http, script) == 401
    (event,) = audit.find("user.mfa-reset")
    assert event.details is not None
    assert event.details["tokens_revoked"] == 1


def test_service_tokens_are_kept_only_when_an_admin_says_so(
    http: httpx.Client, services: Services, clock: FixedClock, tokens: dict[Role, str]
) -> None:
    """keep_tokens keeps a service account's tokens (audited); without it they are revoked;
    for a person it is refused naming the field, and nothing changes."""
    admin_h = _bearer(tokens[Role.ADMIN])
    make_user(services, "scheduler", Role.SERVICE)
    issued = http.post("/api/v1/users/scheduler/tokens", json={}, headers=admin_h).json()["token"]
    with capture_audit(services) as audit:
        kept = http.post(
            "/api/v1/users/scheduler/password-reset",
            json={"password": "rotated-quartz-lamp", "keep_tokens": True},
            headers=admin_h,
        )
    assert kept.status_code == 200
    assert _me(http, issued) == 200
    (event,) = audit.find("user.password-reset")
    assert event.details is not None
    assert (event.details["tokens_revoked"], event.details["tokens_kept"]) == (0, 1)

    person = make_user(services, "olga", Role.CLINICIAN)
    script = _api_token(http, person)
    refused = http.post(
        "/api/v1/users/olga/password-reset",
        json={"password": "rotated-quartz-lamp", "keep_tokens": True},
        headers=admin_h,
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "keep_tokens"
    assert _me(http, script) == 200
    assert _login(http, "olga", PASSWORD).status_code == 200
    _enroll(http, person, clock)
    refused_mfa = http.post(
        "/api/v1/users/olga/mfa-reset", json={"keep_tokens": True}, headers=admin_h
    )
    assert refused_mfa.status_code == 422
    assert _me(http, script) == 200

    http.post(
        "/api/v1/users/scheduler/password-reset",
        json={"password": "another-quartz-lamp"},
        headers=admin_h,
    )
    assert _me(http, issued) == 401


# --- MFA enrollment needs the password ----------------------------------------------------


def test_a_stolen_token_cannot_enroll_the_attackers_authenticator(
    http: httpx.Client, services: Services
) -> None:
    """Attack: with only a stolen 'self' token, POST /mfa/enroll gave the attacker a secret.
    Now the password is required: without it 422, with a wrong one 401 (audited), and no
    secret is stored either way."""
    stolen = make_user(services, "quinn", Role.CLINICIAN)
    bare = http.post("/api/v1/auth/mfa/enroll", json={}, headers=_bearer(stolen))
    assert bare.status_code == 422
    assert bare.json()["errors"][0]["field"] == "password"
    with capture_audit(services) as audit:
        wrong = http.post(
            "/api/v1/auth/mfa/enroll", json={"password": WRONG}, headers=_bearer(stolen)
        )
    assert wrong.status_code == 401
    assert "secret" not in wrong.text
    assert [(e.action, e.outcome) for e in audit.events] == [("mfa.enroll", "failure")]
    assert _raw(services, "SELECT mfa_secret FROM users WHERE username = 'quinn'") == [(None,)]
    right = http.post(
        "/api/v1/auth/mfa/enroll", json={"password": PASSWORD}, headers=_bearer(stolen)
    )
    assert right.status_code == 200


# --- TOTP secrets sealed at rest ----------------------------------------------------------


def test_totp_secrets_are_not_readable_in_the_database(
    http: httpx.Client, services: Services, settings: Settings, clock: FixedClock
) -> None:
    """Attack: users.mfa_secret held the base32 secret, so a database copy generated codes.
    Now the column holds AES-GCM ciphertext, and the key is a 0600 file outside it."""
    token = make_user(services, "mona", Role.DATA_SCIENTIST)
    secret = _enroll(http, token, clock)
    ((stored,),) = _raw(services, "SELECT mfa_secret FROM users WHERE username = 'mona'")
    assert isinstance(stored, str)
    assert stored.startswith("v1.")
    assert secret not in stored
    assert secret.lower() not in stored.lower()
    key_file = settings.resolved_mfa_key_file
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert secret not in key_file.read_text()
    clock.advance(timedelta(seconds=30))
    assert _login(http, "mona", PASSWORD, pyotp.TOTP(secret).at(clock.now())).status_code == 200


def test_a_ciphertext_moved_to_another_user_opens_nothing(
    http: httpx.Client, services: Services, clock: FixedClock
) -> None:
    """The user id is bound into each ciphertext: an attacker who copies their own sealed
    secret onto the admin's row cannot log in as the admin with their codes (401, not 500)."""
    attacker = make_user(services, "mallory", Role.CLINICIAN)
    secret = _enroll(http, attacker, clock)
    victim = make_user(services, "victim", Role.CLINICIAN)
    _enroll(http, victim, clock)
    with services.db.engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE users SET mfa_secret = (SELECT mfa_secret FROM users WHERE "
                "username = 'mallory') WHERE username = 'victim'"
            )
        )
    clock.advance(timedelta(seconds=30))
    code = pyotp.TOTP(secret).at(clock.now())
    assert _login(http, "victim", PASSWORD, code).status_code == 401


def test_plaintext_secrets_of_an_older_installation_are_sealed_on_upgrade(
    empty_db_url: str, tmp_path: Path, clock: FixedClock
) -> None:
    """An installation made before encryption (schema 0009, secret in clear) is upgraded
    with `medops db upgrade`: the secret is sealed, audited, and its codes still work."""
    secret = pyotp.random_base32()
    settings = Settings(home=tmp_path / "old", database_url=empty_db_url, mfa_required_roles=())
    settings.home.mkdir()
    old = Database(empty_db_url)
    try:
        migrate.upgrade(old, "0009")
        with old.session_factory.begin() as session:  # the users table as 0009 made it
            user_id = uuid.uuid4()
            session.add(
                User(
                    id=user_id,
                    username="elder",
                    role="clinician",
                    password_hash=passwords.hash_password(PASSWORD),
                    created_at=clock.now(),
                    mfa_secret=secret,
                    mfa_enabled_at=clock.now(),
                )
            )
            session.flush()
            session.add(  # an installation in use: rows refer to the user
                ApiToken(
                    id="tok_old",
                    user_id=user_id,
                    name="script",
                    kind="api",
                    token_hash="0" * 64,
                    created_at=clock.now(),
                    expires_at=clock.now() + timedelta(days=30),
                )
            )
    finally:
        old.dispose()
    admin.upgrade(settings)
    services = build_services(settings, clock=clock)
    try:
        ((stored,),) = _raw(services, "SELECT mfa_secret FROM users WHERE username = 'elder'")
        assert isinstance(stored, str)
        assert stored.startswith("v1.")
        assert secret not in stored
        actions = _raw(services, "SELECT action FROM audit_events ORDER BY seq")
        assert ("mfa.encrypt-secrets",) in actions
        with httpx.Client(
            transport=EmbeddedTransport(create_app(services=services)), base_url="https://t"
        ) as http:
            code = pyotp.TOTP(secret).at(clock.now())
            assert _login(http, "elder", PASSWORD, code).status_code == 200
    finally:
        services.close()


def test_plaintext_secrets_are_sealed_when_the_server_starts(
    services: Services, app: FastAPI, clock: FixedClock
) -> None:
    """A secret still in clear (the schema migrated by other means) is sealed by the server
    at start, before any login is judged."""
    make_user(services, "late", Role.CLINICIAN)
    secret = pyotp.random_base32()
    with services.db.engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE users SET mfa_secret = :s, mfa_enabled_at = created_at "
                "WHERE username = 'late'"
            ),
            {"s": secret},
        )
    with httpx.Client(transport=EmbeddedTransport(app), base_url="https://t") as http:
        ((stored,),) = _raw(services, "SELECT mfa_secret FROM users WHERE username = 'late'")
        assert isinstance(stored, str)
        assert stored.startswith("v1.")
        code = pyotp.TOTP(secret).at(clock.now())
        assert _login(http, "late", PASSWORD, code).status_code == 200


def test_key_rotation_reencrypts_every_secret_and_retires_the_old_key(
    http: httpx.Client, services: Services, settings: Settings, clock: FixedClock
) -> None:
    """`medops mfa rotate-key`: a new key, every secret sealed with it, the old key gone from
    the file; the running server follows (it re-reads the changed key file)."""
    secrets = {}
    for name in ("rita", "sam"):
        secrets[name] = _enroll(http, make_user(services, name, Role.CLINICIAN), clock)
    old_file = settings.resolved_mfa_key_file.read_text()
    sealed = "SELECT mfa_secret FROM users WHERE mfa_secret IS NOT NULL"
    old_ids = {str(row[0]).split(".")[1] for row in _raw(services, sealed)}
    result = admin.mfa_rotate_key(settings)
    assert result.secrets_reencrypted == 2
    assert result.retired_key_ids == sorted(old_ids)
    new_file = settings.resolved_mfa_key_file.read_text()
    assert len(new_file.split()) == 1
    assert new_file != old_file
    assert settings.resolved_mfa_key_file.stat().st_mode & 0o777 == 0o600
    assert {str(row[0]).split(".")[1] for row in _raw(services, sealed)} == {result.key_id}
    clock.advance(timedelta(seconds=30))
    for name, secret in secrets.items():
        code = pyotp.TOTP(secret).at(clock.now())
        assert _login(http, name, PASSWORD, code).status_code == 200, name
    rotations = _raw(services, "SELECT details FROM audit_events WHERE action = 'mfa.rotate-key'")
    assert len(rotations) == 1


def test_the_key_can_come_from_the_environment_and_rotate_there(
    client_for: Callable[..., tuple[httpx.Client, Services]],
    settings: Settings,
    clock: FixedClock,
) -> None:
    """MEDOPS_MFA_KEY (a Kubernetes secret): no key file is written; with a new key put
    first, rotate-key re-encrypts every secret with it."""
    old_key, new_key = (base64.b64encode(os.urandom(32)).decode() for _ in range(2))
    http, services = client_for(mfa_key=SecretStr(old_key))
    secret = _enroll(http, make_user(services, "tess", Role.CLINICIAN), clock)
    assert not settings.resolved_mfa_key_file.exists()
    rotated = settings.model_copy(update={"mfa_key": SecretStr(f"{new_key},{old_key}")})
    result = admin.mfa_rotate_key(rotated)
    assert result.secrets_reencrypted == 1
    assert result.key_source == "MEDOPS_MFA_KEY"
    http, _services = client_for(mfa_key=SecretStr(new_key))
    clock.advance(timedelta(seconds=30))
    assert _login(http, "tess", PASSWORD, pyotp.TOTP(secret).at(clock.now())).status_code == 200


# --- guessing cannot lock an account out --------------------------------------------------


def _admin_with_mfa(http: httpx.Client, services: Services, clock: FixedClock) -> pyotp.TOTP:
    token = make_user(services, "chief", Role.ADMIN)
    return pyotp.TOTP(_enroll(http, token, clock))


def test_guesses_from_outside_cannot_lock_the_only_admin_out(
    http: httpx.Client,
    http_from: Callable[[str], httpx.Client],
    services: Services,
    clock: FixedClock,
) -> None:
    """Attack: five wrong guesses locked the admin. Now the guessing address is blocked (429)
    and the admin, from the ward, gets in with password and code after at most 8 s."""
    totp = _admin_with_mfa(http, services, clock)
    attacker = http_from("203.0.113.66")
    answers = [_login(attacker, "chief", WRONG).status_code for _ in range(25)]
    assert answers == [401] * 20 + [429] * 5
    ward = http_from("10.20.30.40")
    before = clock.now()
    admitted = _login(ward, "chief", PASSWORD, totp.at(before))
    assert admitted.status_code == 200, admitted.text
    assert clock.now() - before == timedelta(seconds=8)  # the account's wait, then in


def test_a_distributed_attack_only_slows_the_account(
    http: httpx.Client,
    http_from: Callable[[str], httpx.Client],
    services: Services,
    clock: FixedClock,
) -> None:
    """Guesses from 30 addresses each slow the next judgment, never beyond 8 s; the admin's
    right password and code still get in."""
    totp = _admin_with_mfa(http, services, clock)
    for n in range(30):
        assert _login(http_from(f"198.51.100.{n + 1}"), "chief", WRONG).status_code == 401
    before = clock.now()
    admitted = _login(http_from("10.20.30.40"), "chief", PASSWORD, totp.at(before))
    assert admitted.status_code == 200
    assert clock.now() - before == timedelta(seconds=8)


# --- refusals cannot flood the audit trail ------------------------------------------------


def test_two_thousand_refusals_make_one_record_not_two_thousand(
    http: httpx.Client, services: Services, clock: FixedClock
) -> None:
    """Attack: 2,000 unauthenticated requests wrote 2,000 audit rows. Now they are counted:
    nothing during the minute, one auth.refused record with count 2,000 once it closes."""
    with capture_audit(services) as during:
        for _ in range(2000):
            assert http.get("/api/v1/users").status_code == 401
    assert during.events == []
    clock.advance(timedelta(minutes=1))
    with capture_audit(services) as after:
        assert http.get("/api/v1/users").status_code == 401  # the next minute's first
    # (a writer's first record opens its chain: audit.chain.open, not a refusal)
    (record,) = [e for e in after.events if e.action != "audit.chain.open"]
    assert (record.action, record.outcome, record.source_ip) == (
        "auth.refused",
        "denied",
        "127.0.0.1",
    )
    assert record.details is not None
    assert record.details["count"] == 2000
    assert record.details["routes"] == {"GET /api/v1/users": 2000}
    assert services.refusals.pending() == 1


def test_refusals_are_counted_per_address_and_reason_and_none_is_lost_at_shutdown(
    client_for: Callable[..., tuple[httpx.Client, Services]],
    services: Services,
) -> None:
    """Two addresses and two reasons give four records; the open minute is written when the
    server stops."""
    http, own = client_for()
    far = httpx.Client(
        transport=EmbeddedTransport(create_app(services=own), client=("192.0.2.8", 1)),
        base_url="https://t",
    )
    for client in (http, far):
        for _ in range(3):
            client.get("/api/v1/users")
            client.get("/api/v1/users", headers=_bearer("mdo_forged"))
    far.close()
    http.close()
    own.close()
    rows = _raw(
        services,
        "SELECT source_ip, reason, details FROM audit_events WHERE action = 'auth.refused' "
        "ORDER BY source_ip, reason",
    )
    assert [(ip, reason) for ip, reason, _ in rows] == [
        ("127.0.0.1", NO_TOKEN),
        ("127.0.0.1", "invalid token"),
        ("192.0.2.8", NO_TOKEN),
        ("192.0.2.8", "invalid token"),
    ]
    assert all('"count": 3' in str(details) for _, _, details in rows)


def test_refusals_of_an_authenticated_caller_stay_one_record_each(
    http: httpx.Client, services: Services, tokens: dict[Role, str]
) -> None:
    """A 403 names who was refused: each keeps its own record."""
    with capture_audit(services) as audit:
        for _ in range(3):
            http.get("/api/v1/users", headers=_bearer(tokens[Role.CLINICIAN]))
    assert [(e.action, e.outcome, e.actor_name) for e in audit.events] == [
        ("user.list", "denied", "user-clinician")
    ] * 3


# --- a password typed as the username -----------------------------------------------------


def test_a_password_typed_into_the_username_field_is_not_stored(
    http: httpx.Client, services: Services
) -> None:
    """Attack: the failed login's record kept the username verbatim. A name with no account
    is recorded as 'unknown'; the text is nowhere in the audit trail or the counters."""
    typed = "Correct-Horse-Battery-77"
    make_user(services, "uma", Role.CLINICIAN)
    with capture_audit(services) as audit:
        assert _login(http, typed, "whatever-else").status_code == 401
        assert _login(http, "uma", WRONG).status_code == 401
    assert [e.resource_id for e in audit.find("auth.login")] == ["unknown", "uma"]
    everything = _raw(services, "SELECT * FROM audit_events") + _raw(
        services, "SELECT * FROM login_throttle"
    )
    assert typed.lower() not in repr(everything).lower()


# --- break-glass --------------------------------------------------------------------------


@pytest.mark.parametrize("round_", range(2))
def test_ten_concurrent_break_glass_requests_give_one_grant(
    client_for: Callable[..., tuple[httpx.Client, Services]],
    services: Services,
    tokens: dict[Role, str],
    round_: int,
) -> None:
    """Attack: ten concurrent identical requests gave ten grants. Now, from two servers on
    one database, exactly one is granted and nine get 409."""
    servers = [client_for()[0], client_for()[0]]
    token = tokens[Role.CLINICIAN]
    for server in servers:  # each app builds a route on its first use: not inside the race
        warm = server.post("/api/v1/breakglass", json={}, headers=_bearer(token))
        assert warm.status_code == 422
    barrier = threading.Barrier(10)
    answers: list[int] = []
    lock = threading.Lock()

    def ask(n: int) -> None:
        barrier.wait()
        answer = servers[n % 2].post(
            "/api/v1/breakglass",
            json={"permission": "audit:read", "reason": REASON},
            headers=_bearer(token),
        )
        with lock:
            answers.append(answer.status_code)

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(answers) == [201] + [409] * 9
    with services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(BreakGlassGrant)) == 1


def test_break_glass_grants_do_not_stack_across_permissions(
    http: httpx.Client, tokens: dict[Role, str]
) -> None:
    """While a grant of audit:read runs, a grant of users:read is refused (409)."""
    clinician = _bearer(tokens[Role.CLINICIAN])
    first = http.post(
        "/api/v1/breakglass", json={"permission": "audit:read", "reason": REASON}, headers=clinician
    )
    assert first.status_code == 201
    second = http.post(
        "/api/v1/breakglass", json={"permission": "users:read", "reason": REASON}, headers=clinician
    )
    assert second.status_code == 409
    assert first.json()["id"] in second.json()["detail"]


# --- re-enabling a disabled user ----------------------------------------------------------


def test_an_admin_re_enables_a_disabled_user(
    http: httpx.Client, services: Services, tokens: dict[Role, str]
) -> None:
    """Finding: there was no way back from disabling. Now enable restores logins (audited);
    the old tokens stay revoked; enabling twice is 409; other roles get 403."""
    admin_h = _bearer(tokens[Role.ADMIN])
    old = make_user(services, "vic", Role.CLINICIAN)
    assert http.post("/api/v1/users/vic/disable", headers=admin_h).status_code == 200
    assert _login(http, "vic", PASSWORD).status_code == 401
    assert (
        http.post("/api/v1/users/vic/enable", headers=_bearer(tokens[Role.CLINICIAN])).status_code
        == 403
    )
    with capture_audit(services) as audit:
        enabled = http.post("/api/v1/users/vic/enable", headers=admin_h)
    assert enabled.status_code == 200
    assert enabled.json()["active"] is True
    (event,) = audit.find("user.enable")
    assert event.details is not None
    assert event.details["after"] == {"active": True}
    assert _login(http, "vic", PASSWORD).status_code == 200
    assert _me(http, old) == 401
    assert http.post("/api/v1/users/vic/enable", headers=admin_h).status_code == 409
    assert http.post("/api/v1/users/nobody/enable", headers=admin_h).status_code == 404


def test_no_audit_row_or_counter_holds_a_throttled_name_in_clear(
    http: httpx.Client, services: Services
) -> None:
    """Counters are keyed by address and by a digest of the name."""
    _login(http, "someone-else", WRONG)
    with services.db.session() as session:
        keys = list(session.scalars(select(LoginThrottle.key)))
    assert sorted(k.split(":")[0] for k in keys) == ["account", "address"]
    assert not any("someone-else" in k for k in keys)
