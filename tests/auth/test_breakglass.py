"""Break-glass: emergency access granted at once, audited on use, reviewed, self-expiring."""

from __future__ import annotations

from datetime import timedelta

import httpx

from medops.core.permissions import Role
from medops.services import Services
from medops.testing import FixedClock, capture_audit
from tests.helpers.http import bearer

REASON = "ED patient 4411 deteriorating; need the model's audit history"


def test_grant_use_expiry_and_review(
    http: httpx.Client, services: Services, clock: FixedClock, tokens: dict[Role, str]
) -> None:
    """A clinician takes audit:read for 30 min; uses are audited as break-glass; it expires."""
    # An API token, so that the 30 minutes do not also end an idle login.
    api = http.post("/api/v1/tokens", json={}, headers=bearer(tokens[Role.CLINICIAN])).json()
    clinician = bearer(api["token"])
    auditor = bearer(
        http.post("/api/v1/tokens", json={}, headers=bearer(tokens[Role.AUDITOR])).json()["token"]
    )
    assert http.get("/api/v1/audit/events", headers=clinician).status_code == 403
    with capture_audit(services) as audit:
        grant = http.post(
            "/api/v1/breakglass",
            json={"permission": "audit:read", "reason": REASON, "minutes": 30},
            headers=clinician,
        )
        used = http.get("/api/v1/audit/events", headers=clinician)
    assert grant.status_code == 201
    assert used.status_code == 200
    (granted,) = audit.find("breakglass.grant")
    assert granted.reason == REASON
    assert granted.details is not None
    assert granted.details["review"] == "pending"
    (use,) = audit.find("breakglass.use")
    assert use.auth_method == "break-glass"
    assert use.resource_id == "GET /api/v1/audit/events"
    clock.advance(timedelta(minutes=30))
    assert http.get("/api/v1/audit/events", headers=clinician).status_code == 403

    pending = http.get("/api/v1/breakglass", params={"pending": "true"}, headers=auditor).json()
    assert [(g["username"], g["active"]) for g in pending] == [("user-clinician", False)]
    reviewed = http.post(
        f"/api/v1/breakglass/{grant.json()['id']}/review",
        json={"note": "justified: deteriorating patient"},
        headers=auditor,
    )
    assert reviewed.status_code == 200
    assert reviewed.json()["reviewed_by"] == "user-auditor"
    assert http.get("/api/v1/breakglass", params={"pending": "true"}, headers=auditor).json() == []


def test_only_eligible_permissions_with_a_reason_and_a_bounded_time(
    http: httpx.Client, tokens: dict[Role, str]
) -> None:
    """users:manage cannot be taken; a short reason or a too-long grant is refused."""
    clinician = bearer(tokens[Role.CLINICIAN])
    cases = [
        ({"permission": "users:manage", "reason": REASON}, "permission"),
        ({"permission": "audit:read", "reason": "because"}, "reason"),
        ({"permission": "audit:read", "reason": REASON, "minutes": 10_000}, "minutes"),
    ]
    for body, field in cases:
        response = http.post("/api/v1/breakglass", json=body, headers=clinician)
        assert response.status_code == 422, body
        assert response.json()["errors"][0]["field"] == field


def test_holders_cannot_review_their_own_grant(http: httpx.Client, tokens: dict[Role, str]) -> None:
    """An ML engineer cannot review their own grant (403); an admin can, once (then 409)."""
    grant = http.post(
        "/api/v1/breakglass",
        json={"permission": "users:read", "reason": REASON},
        headers=bearer(tokens[Role.ML_ENGINEER]),
    ).json()
    own = http.post(
        f"/api/v1/breakglass/{grant['id']}/review",
        json={"note": "fine"},
        headers=bearer(tokens[Role.ML_ENGINEER]),
    )
    assert own.status_code == 403
    admin = http.post(
        f"/api/v1/breakglass/{grant['id']}/review",
        json={"note": "fine"},
        headers=bearer(tokens[Role.ADMIN]),
    )
    assert admin.status_code == 200
    twice = http.post(
        f"/api/v1/breakglass/{grant['id']}/review",
        json={"note": "again"},
        headers=bearer(tokens[Role.AUDITOR]),
    )
    assert twice.status_code == 409
