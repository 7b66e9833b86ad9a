"""User accounts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path

from medops.api.deps import API_PREFIX, ServicesDep, require
from medops.auth.schemas import (
    USERNAME_PATTERN,
    FullName,
    MfaReset,
    PasswordReset,
    TokenCreate,
    TokenIssued,
    UserCreate,
    UserOut,
)
from medops.context import Context
from medops.core.permissions import Permission

router = APIRouter(prefix=f"{API_PREFIX}/users", tags=["users"])

Username = Annotated[str, Path(pattern=USERNAME_PATTERN)]


@router.get("", name="user.list")
def list_users(
    services: ServicesDep,
    _ctx: Annotated[Context, Depends(require(Permission.USERS_READ))],
) -> list[UserOut]:
    """All user accounts with role and status."""
    return services.identity.list_users()


@router.post("", name="user.create", status_code=201)
def create_user(
    body: UserCreate,
    services: ServicesDep,
    ctx: Annotated[Context, Depends(require(Permission.USERS_MANAGE))],
) -> UserOut:
    """Create an account with one role and an initial password."""
    return services.identity.create_user(ctx, body)


@router.post("/{username}/disable", name="user.disable")
def disable_user(
    username: Username,
    services: ServicesDep,
    ctx: Annotated[Context, Depends(require(Permission.USERS_MANAGE))],
) -> UserOut:
    """Disable an account; its tokens stop working on the next request."""
    return services.identity.disable_user(ctx, username)


@router.post("/{username}/enable", name="user.enable")
def enable_user(
    username: Username,
    services: ServicesDep,
    ctx: Annotated[Context, Depends(require(Permission.USERS_MANAGE))],
) -> UserOut:
    """Re-enable a disabled account; its old tokens stay revoked (the user logs in again)."""
    return services.identity.enable_user(ctx, username)


@router.post("/{username}/tokens", name="user.token.create", status_code=201)
def create_token_for_user(
    username: Username,
    services: ServicesDep,
    ctx: Annotated[Context, Depends(require(Permission.USERS_MANAGE))],
    body: Annotated[TokenCreate | None, Body()] = None,
) -> TokenIssued:
    """Issue an API token to another account (typically a service account); shown once."""
    return services.identity.create_token(ctx, body or TokenCreate(), for_username=username)


Manage = Annotated[Context, Depends(require(Permission.USERS_MANAGE))]


@router.post("/{username}/password-reset", name="user.password-reset")
def reset_password(
    username: Username, body: PasswordReset, services: ServicesDep, ctx: Manage
) -> UserOut:
    """Set a temporary password; the user must change it at next login; their logins end and
    their API tokens are revoked (``keep_tokens``: a service account's stay)."""
    return services.identity.reset_password(
        ctx, username, body.password, keep_tokens=body.keep_tokens
    )


@router.put("/{username}/full-name", name="user.set-name")
def set_full_name(
    username: Username, body: FullName, services: ServicesDep, ctx: Manage
) -> UserOut:
    """Set the full name printed with the user's electronic signatures."""
    return services.identity.set_full_name(ctx, username, body.full_name)


@router.post("/{username}/mfa-reset", name="user.mfa-reset")
def reset_mfa(
    username: Username,
    services: ServicesDep,
    ctx: Manage,
    body: Annotated[MfaReset | None, Body()] = None,
) -> UserOut:
    """Remove a user's TOTP and recovery codes (a lost phone); they enroll again. Their logins
    end and their API tokens are revoked (``keep_tokens``: a service account's stay)."""
    keep = body.keep_tokens if body is not None else False
    return services.identity.reset_mfa(ctx, username, keep_tokens=keep)


@router.post("/{username}/unlock", name="user.unlock", status_code=204)
def unlock(
    username: Annotated[str, Path(max_length=128)], services: ServicesDep, ctx: Manage
) -> None:
    """Clear the slowing of the account's logins and the lock of its re-authentication."""
    services.identity.unlock(ctx, username)
