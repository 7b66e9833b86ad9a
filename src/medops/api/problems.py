"""RFC 9457 problem details: the one body shape of every error the API returns."""

from __future__ import annotations

import json
from typing import Any

from medops.errors import FieldError

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:medops:problem:"


def problem_body(
    *,
    code: str,
    title: str,
    status: int,
    detail: str,
    request_id: str | None,
    errors: list[FieldError] | None = None,
) -> dict[str, Any]:
    """The problem object: stable ``type``, ``title``, ``status``, ``detail`` and extensions."""
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + code,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if request_id:
        body["request_id"] = request_id
    if errors:
        body["errors"] = [{"field": e.field, "reason": e.reason} for e in errors]
    return body


def problem_bytes(**kwargs: Any) -> bytes:
    return json.dumps(problem_body(**kwargs)).encode()
