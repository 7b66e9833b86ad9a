"""Break-glass: emergency access, and its review."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from medops.api.deps import API_PREFIX, ServicesDep, require
from medops.auth.schemas import BreakGlassOut, BreakGlassRequest, BreakGlassReview
from medops.context import Context
from medops.core.permissions import Permission

router = APIRouter(prefix=f"{API_PREFIX}/breakglass", tags=["break-glass"])
Review = Annotated[Context, Depends(require(Permission.BREAKGLASS_REVIEW))]


@router.post("", name="breakglass.grant", status_code=201)
def take(
    body: BreakGlassRequest,
    services: ServicesDep,
    ctx: Annotated[Context, Depends(require(Permission.BREAKGLASS_USE))],
) -> BreakGlassOut:
    """Take emergency access to one permission now, with a reason; expires by itself."""
    return services.breakglass.grant(ctx, body)


@router.get("", name="breakglass.list")
def list_grants(
    services: ServicesDep, _ctx: Review, pending: Annotated[bool, Query()] = False
) -> list[BreakGlassOut]:
    """Break-glass grants, newest first; ``pending=true`` for those awaiting review."""
    return services.breakglass.list(pending_only=pending)


@router.post("/{grant_id}/review", name="breakglass.review")
def review(
    grant_id: str,
    body: BreakGlassReview,
    services: ServicesDep,
    ctx: Review,
) -> BreakGlassOut:
    """Record the review of a grant (by someone other than its holder)."""
    return services.breakglass.review(ctx, grant_id, body)
