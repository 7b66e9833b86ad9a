"""TOTP enrollment and use, recovery codes, and the MFA policy for chosen roles."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import httpx
import pyotp

from medops.core.permissions import Role
from medops.services import Services
from medops.testing import FixedClock, capture_audit
from tests.helpers.http import bearer, login
from tests.helpers.people import PASSWORD, make_user


def _enroll(http: httpx.Client, token: str, clock: FixedClock) -> tuple[str, list[str]]:
    started = http.post(
        "/api/v1/auth/mfa/enroll", json={"password": PASSWORD}, headers=bearer(token)
    )
    assert started.status_code == 200
    body = started.json()
    assert body["otpauth_uri"].startswith("otpauth://totp/medops:")
    assert body["qr_png_data_uri"].startswith("data:image/png;base64,")
    secret = body["secret"]
    code = pyotp.TOTP(secret).at(clock.now())
    confirmed = http.post("/api/v1/auth/mfa/confirm", json={"code": code}, headers=bearer(token))
    assert confirmed.status_code == 200, confirmed.text
    return secret, confirmed.json()["codes"]


def test_totp_codes_valid_expired_and_replayed(
    http: httpx.Client, services: Services, clock: FixedClock
) -> None:
    """A current code works once; the same code again, or a code from 2 steps ago, does not."""
    token = make_user(services, "mona", Role.DATA_SCIENTIST)
    secret, _codes = _enroll(http, token, clock)
    totp = pyotp.TOTP(secret)
    clock.advance(timedelta(seconds=30))
    no_code = login(http, "mona", PASSWORD)
    assert no_code.status_code == 401
    assert no_code.json()["type"] == "urn:medops:problem:mfa-required"
    code = totp.at(clock.now())
    first = login(http, "mona", PASSWORD, code)
    assert first.status_code == 200
    me = http.get("/api/v1/auth/me", headers=bearer(first.json()["access_token"])).json()
    assert me["auth_method"] == "password+totp"
    replayed = login(http, "mona", PASSWORD, code)
    assert replayed.status_code == 401
    assert replayed.json()["detail"] == "invalid username or password"
    clock.advance(timedelta(seconds=90))
    expired = login(http, "mona", PASSWORD, totp.at(clock.now() - timedelta(seconds=60)))
    assert expired.status_code == 401
    drifted = login(http, "mona", PASSWORD, totp.at(clock.now() - timedelta(seconds=30)))
    assert drifted.status_code == 200


def test_recovery_codes_work_once_each(
    http: httpx.Client, services: Services, clock: FixedClock
) -> None:
    """Ten codes; each logs in once and is refused the second time."""
    token = make_user(services, "ned", Role.CLINICIAN)
    _secret, codes = _enroll(http, token, clock)
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert login(http, "ned", PASSWORD, codes[0]).status_code == 200
    assert login(http, "ned", PASSWORD, codes[0]).status_code == 401
    assert login(http, "ned", PASSWORD, codes[1].upper()).status_code == 200


def test_policy_roles_can_only_enroll_until_they_do(
    client_for: Callable[..., tuple[httpx.Client, Services]], clock: FixedClock
) -> None:
    """An ML engineer without MFA logs in restricted: 403 action-required until enrolled."""
    http, services = client_for(mfa_required_roles=("admin", "ml_engineer"))
    make_user(services, "olga", Role.ML_ENGINEER)
    answer = login(http, "olga", PASSWORD).json()
    assert answer["restriction"] == "mfa-enrollment"
    token = answer["access_token"]
    blocked = http.post("/api/v1/tokens", json={}, headers=bearer(token))
    assert blocked.status_code == 403
    assert blocked.json()["type"] == "urn:medops:problem:action-required"
    assert "enroll" in blocked.json()["detail"]
    assert (
        http.get("/api/v1/auth/me", headers=bearer(token)).json()["restriction"] == "mfa-enrollment"
    )
    _enroll(http, token, clock)
    assert http.post("/api/v1/tokens", json={}, headers=bearer(token)).status_code == 201


def test_admin_resets_a_lost_authenticator(
    http: httpx.Client, services: Services, clock: FixedClock, tokens: dict[Role, str]
) -> None:
    """After a reset the password alone works again, and the reset is audited."""
    token = make_user(services, "pia", Role.AUDITOR)
    _enroll(http, token, clock)
    assert login(http, "pia", PASSWORD).status_code == 401
    with capture_audit(services) as audit:
        reset = http.post("/api/v1/users/pia/mfa-reset", headers=bearer(tokens[Role.ADMIN]))
    assert reset.status_code == 200
    assert reset.json()["mfa_enabled"] is False
    assert audit.actions() == ["user.mfa-reset"]
    assert login(http, "pia", PASSWORD).status_code == 200


def test_confirming_with_a_wrong_code_names_the_field(
    http: httpx.Client, services: Services
) -> None:
    """A wrong first code leaves MFA off and says which field was wrong."""
    token = make_user(services, "quinn", Role.CLINICIAN)
    http.post("/api/v1/auth/mfa/enroll", json={"password": PASSWORD}, headers=bearer(token))
    wrong = http.post("/api/v1/auth/mfa/confirm", json={"code": "000000"}, headers=bearer(token))
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["field"] == "code"
    assert login(http, "quinn", PASSWORD).status_code == 200
