"""The caller's API tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends

from medops.api.deps import API_PREFIX, ServicesDep, require
from medops.auth.schemas import TokenCreate, TokenIssued, TokenOut
from medops.context import Context
from medops.core.permissions import Permission

router = APIRouter(prefix=f"{API_PREFIX}/tokens", tags=["tokens"])
SelfContext = Annotated[Context, Depends(require(Permission.SELF))]
CreateContext = Annotated[Context, Depends(require(Permission.TOKENS_CREATE))]


@router.post("", name="token.create", status_code=201)
def create_token(
    services: ServicesDep,
    ctx: CreateContext,
    body: Annotated[TokenCreate | None, Body()] = None,
) -> TokenIssued:
    """Create an API token; the secret is in this response and nowhere else, ever."""
    return services.identity.create_token(ctx, body or TokenCreate())


@router.get("", name="token.list")
def list_tokens(services: ServicesDep, ctx: SelfContext) -> list[TokenOut]:
    """The caller's tokens with expiry and revocation time (never the secrets)."""
    return services.identity.list_tokens(ctx)


@router.delete("/{token_id}", name="token.revoke")
def revoke_token(token_id: str, services: ServicesDep, ctx: SelfContext) -> TokenOut:
    """Revoke a token; it stops working on the next request."""
    return services.identity.revoke_token(ctx, token_id)
