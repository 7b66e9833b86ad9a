"""The SDK's audit calls: search the audit trail and export it, mixed into ``medops.Client``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from medops.audit.schemas import AuditPage, VerificationOut
from medops.client.shapes import Shape
from medops.client.transport import Transport, error_from
from medops.errors import ConnectionFailedError

_AUDIT_PAGE = Shape(AuditPage)
_VERIFICATION = Shape(VerificationOut)


class AuditCalls(Transport):
    """Audit methods of the SDK client."""

    # --- audit -----------------------------------------------------------------------------

    def audit_events(
        self,
        *,
        limit: int = 100,
        before: int | None = None,
        filters: Mapping[str, str | datetime] | None = None,
    ) -> AuditPage:
        """Search the audit trail, newest first. Filters: actor, action, resource_type,
        resource_id, patient, outcome, since, until."""
        params = _params(filters) | {"limit": limit}
        if before is not None:
            params["before"] = before
        return self._call("GET", "/api/v1/audit/events", _AUDIT_PAGE, params=params)

    def audit_export(
        self, fmt: str = "jsonl", filters: Mapping[str, str | datetime] | None = None
    ) -> bytes:
        """Every matching record as JSON lines, CSV or a FHIR R4 Bundle (``fmt``)."""
        params = _params(filters) | {"format": fmt}
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            response = self._http.get("/api/v1/audit/export", params=params, headers=headers)
        except httpx.TransportError as exc:
            raise ConnectionFailedError(f"cannot reach {self.url}: {exc}") from None
        if response.status_code >= 400:
            raise error_from(response)
        return response.content

    def audit_verify(self) -> VerificationOut:
        """Verify the audit log on the server: every chain's hashes, MACs and signed
        openings, the checkpoints' signatures, and the prediction, outcome and signature rows
        bound to their records. Needs audit:read. What it proves and cannot prove:
        docs/security.md."""
        return self._call("GET", "/api/v1/audit/verify", _VERIFICATION)


def _params(filters: Mapping[str, str | datetime] | None) -> dict[str, Any]:
    return {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in (filters or {}).items()
    }
