"""Login (OAuth2 password flow) and the caller's own identity."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form

from medops.api.deps import API_PREFIX, ServicesDep, public, require
from medops.auth.permissions import Permission
from medops.auth.schemas import AccessToken, Me
from medops.context import Context

router = APIRouter(prefix=f"{API_PREFIX}/auth", tags=["auth"])


@router.post("/token", name="auth.login", responses={401: {"description": "Bad credentials"}})
def login(
    services: ServicesDep,
    ctx: Annotated[Context, Depends(public)],
    username: Annotated[str, Form(min_length=1, max_length=64)],
    password: Annotated[str, Form(min_length=1, max_length=1024)],
) -> AccessToken:
    """Exchange a username and password for a bearer access token (OAuth2 password flow)."""
    return services.identity.login(ctx, username, password)


@router.get("/me", name="auth.me")
def me(ctx: Annotated[Context, Depends(require(Permission.SELF))]) -> Me:
    """Who the token belongs to, with role, permissions and authentication method."""
    actor = ctx.actor
    assert actor is not None
    return Me(
        id=actor.user_id,
        username=actor.username,
        role=actor.role,
        auth_method=actor.auth_method,
        token_id=actor.token_id,
        permissions=sorted(p.value for p in actor.permissions),
    )
