"""API token scopes narrow the owner's permissions and never widen them."""

from __future__ import annotations

import httpx

from medops.core.permissions import Role
from tests.helpers.http import bearer


def test_a_scoped_token_holds_only_its_scopes(http: httpx.Client, tokens: dict[Role, str]) -> None:
    """An auditor's token scoped to audit:read reads the trail but cannot list users."""
    issued = http.post(
        "/api/v1/tokens", json={"scopes": ["audit:read"]}, headers=bearer(tokens[Role.AUDITOR])
    ).json()
    assert issued["scopes"] == ["audit:read"]
    scoped = bearer(issued["token"])
    assert http.get("/api/v1/audit/events", headers=scoped).status_code == 200
    assert http.get("/api/v1/users", headers=scoped).status_code == 403
    assert http.get("/api/v1/auth/me", headers=scoped).status_code == 403


def test_scopes_beyond_the_owners_role_are_refused(
    http: httpx.Client, tokens: dict[Role, str]
) -> None:
    """A clinician cannot mint a token with users:manage."""
    response = http.post(
        "/api/v1/tokens", json={"scopes": ["users:manage"]}, headers=bearer(tokens[Role.CLINICIAN])
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "scopes"
    unknown = http.post(
        "/api/v1/tokens", json={"scopes": ["root"]}, headers=bearer(tokens[Role.CLINICIAN])
    )
    assert unknown.status_code == 422
