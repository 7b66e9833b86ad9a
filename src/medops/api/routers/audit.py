"""Reading the audit trail."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from medops.api.deps import API_PREFIX, ServicesDep, require
from medops.audit.schemas import AuditPage
from medops.auth.permissions import Permission
from medops.context import Context

router = APIRouter(prefix=f"{API_PREFIX}/audit", tags=["audit"])


@router.get("/events", name="audit.list")
def list_events(
    services: ServicesDep,
    _ctx: Annotated[Context, Depends(require(Permission.AUDIT_READ))],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
) -> AuditPage:
    """Audit records, newest first; page back with ``before``."""
    return services.audit.list_events(limit=limit, before=before, action=action)
