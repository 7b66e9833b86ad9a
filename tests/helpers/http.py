"""Talking to the real app over HTTP in tests."""

from __future__ import annotations

from typing import Any

import httpx

# The password of every user the tests create.
PASSWORD = "a-long-test-password"


def bearer(token: str) -> dict[str, str]:
    """The Authorization header of a bearer token."""
    return {"Authorization": f"Bearer {token}"}


def login(
    http: httpx.Client, username: str, password: str, otp: str | None = None
) -> httpx.Response:
    """POST the login form (password, and the one-time code when given)."""
    form = {"username": username, "password": password}
    if otp is not None:
        form["otp"] = otp
    return http.post("/api/v1/auth/token", data=form)


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The problem+json body of a refusal, checked to have ``status`` and type ``code``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:medops:problem:{code}"
    return body
