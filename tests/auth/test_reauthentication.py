"""The reusable re-authentication of electronic signatures (21 CFR 11.200)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated

import httpx
import pyotp
import pytest
from fastapi import Depends, FastAPI

from medops.api.deps import ServicesDep, require
from medops.auth.schemas import Signature, SignatureRecord
from medops.client.embedded import EmbeddedTransport
from medops.context import Context
from medops.core.permissions import Permission, Role
from medops.services import Services
from medops.testing import FixedClock, capture_audit
from tests.helpers.http import bearer
from tests.helpers.people import PASSWORD, make_user


@pytest.fixture
def signing(app: FastAPI) -> Iterator[httpx.Client]:
    """The app plus one route marked as a signature, the way approvals will use it."""

    def sign(
        body: Signature,
        services: ServicesDep,
        ctx: Annotated[Context, Depends(require(Permission.SELF))],
    ) -> SignatureRecord:
        return services.logins.reauthenticate(ctx, body)

    app.add_api_route("/sign", sign, methods=["POST"], name="test.sign")
    with httpx.Client(transport=EmbeddedTransport(app), base_url="https://t") as client:
        yield client


def test_signature_needs_the_password_again_and_records_its_meaning(
    signing: httpx.Client, services: Services
) -> None:
    """Right password: a signature record; wrong: 401, audited, counted toward lockout."""
    token = make_user(services, "abe", Role.CLINICIAN)
    with capture_audit(services) as audit:
        wrong = signing.post(
            "/sign",
            json={"password": "not-my-password", "meaning": "approve"},
            headers=bearer(token),
        )
        right = signing.post(
            "/sign",
            json={"password": PASSWORD, "meaning": "approve model v3"},
            headers=bearer(token),
        )
    assert wrong.status_code == 401
    assert right.status_code == 200
    record = right.json()
    assert (record["username"], record["method"], record["meaning"]) == (
        "abe",
        "password",
        "approve model v3",
    )
    assert [(e.action, e.outcome) for e in audit.events] == [
        ("auth.reauthenticate", "failure"),
        ("auth.reauthenticate", "success"),
    ]


def test_with_mfa_enrolled_a_signature_needs_a_fresh_code_too(
    signing: httpx.Client, services: Services, clock: FixedClock
) -> None:
    """Password alone is refused; password plus an unused TOTP code signs."""
    token = make_user(services, "bea", Role.CLINICIAN)
    secret = signing.post(
        "/api/v1/auth/mfa/enroll", json={"password": PASSWORD}, headers=bearer(token)
    ).json()["secret"]
    totp = pyotp.TOTP(secret)
    signing.post(
        "/api/v1/auth/mfa/confirm", json={"code": totp.at(clock.now())}, headers=bearer(token)
    )
    alone = signing.post(
        "/sign", json={"password": PASSWORD, "meaning": "approve"}, headers=bearer(token)
    )
    assert alone.status_code == 401
    reused = signing.post(
        "/sign",
        json={"password": PASSWORD, "otp": totp.at(clock.now()), "meaning": "approve"},
        headers=bearer(token),
    )
    assert reused.status_code == 401  # the enrollment already used this step's code
    clock.advance(timedelta(seconds=30))
    fresh = signing.post(
        "/sign",
        json={"password": PASSWORD, "otp": totp.at(clock.now()), "meaning": "approve"},
        headers=bearer(token),
    )
    assert fresh.status_code == 200
    assert fresh.json()["method"] == "password+totp"
