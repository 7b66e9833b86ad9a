"""Helpers shared by the identity services: converting rows, building actors."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from medops.auth.schemas import TokenOut, UserOut
from medops.auth.tables import ApiToken, User
from medops.context import Actor, Context
from medops.core.permissions import Permission, Role, permissions_of
from medops.errors import AuthenticationError

BAD_LOGIN = "invalid username or password"
LOGIN_KINDS = ("login", "session")
# Recorded instead of a login name that matches no account (it may be a password typed into
# the username field): such text never reaches the audit trail.
UNKNOWN_USER = "unknown"


@dataclass(frozen=True)
class Revoked:
    """What ``revoke_credentials`` ended: browser and CLI logins, and API tokens."""

    logins: int
    api_tokens: int
    api_tokens_kept: int = 0

    def details(self) -> dict[str, int]:
        out = {"logins_ended": self.logins, "tokens_revoked": self.api_tokens}
        if self.api_tokens_kept:
            out["tokens_kept"] = self.api_tokens_kept
        return out


def revoke_credentials(
    session: Session,
    user_id: uuid.UUID,
    now: datetime,
    *,
    keep_login: str | None = None,
    keep_api_tokens: bool = False,
) -> Revoked:
    """End what a user's old credentials opened: every live login (CLI token, browser
    session) except ``keep_login``, and every live API token unless ``keep_api_tokens`` (an
    admin's explicit choice, for service accounts only)."""
    live = session.execute(
        select(ApiToken.id, ApiToken.kind).where(
            ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None)
        )
    ).all()
    logins = [i for i, kind in live if kind in LOGIN_KINDS and i != keep_login]
    api = [i for i, kind in live if kind not in LOGIN_KINDS]
    ended = logins if keep_api_tokens else logins + api
    if ended:
        session.execute(update(ApiToken).where(ApiToken.id.in_(ended)).values(revoked_at=now))
    return Revoked(
        logins=len(logins),
        api_tokens=0 if keep_api_tokens else len(api),
        api_tokens_kept=len(api) if keep_api_tokens else 0,
    )


def require_actor(ctx: Context) -> Actor:
    if ctx.actor is None:
        raise AuthenticationError("authentication required")
    return ctx.actor


def token_scopes(token: ApiToken) -> frozenset[Permission] | None:
    if token.scopes is None:
        return None
    return frozenset(Permission(p) for p in json.loads(token.scopes))


def make_actor(
    user: User,
    token: ApiToken,
    emergency: frozenset[Permission] = frozenset(),
) -> Actor:
    permissions = permissions_of(user.role)
    scopes = token_scopes(token)
    if scopes is not None:
        permissions &= scopes
        emergency &= scopes  # a scoped token stays scoped, even under break-glass
    return Actor(
        user_id=str(user.id),
        username=user.username,
        role=user.role,
        auth_method=_method(user, token),
        permissions=permissions,
        token_id=token.id,
        restriction=token.restriction,
        emergency=emergency - permissions,
    )


def _method(user: User, token: ApiToken) -> str:
    if token.kind == "api":
        return "token"
    return "password+totp" if user.mfa_enabled_at else "password"


def user_out(user: User) -> UserOut:
    return UserOut(
        id=str(user.id),
        username=user.username,
        role=Role(user.role),
        active=user.is_active,
        created_at=user.created_at,
        disabled_at=user.disabled_at,
        mfa_enabled=user.mfa_enabled_at is not None,
        must_change_password=user.must_change_password,
        full_name=user.full_name,
    )


def token_out(token: ApiToken, username: str) -> TokenOut:
    scopes = token_scopes(token)
    return TokenOut(
        id=token.id,
        name=token.name,
        kind=token.kind,
        username=username,
        created_at=token.created_at,
        expires_at=token.expires_at,
        revoked_at=token.revoked_at,
        last_used_at=token.last_used_at,
        scopes=sorted(p.value for p in scopes) if scopes is not None else None,
    )
