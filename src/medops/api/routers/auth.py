"""Logging in and out (bearer tokens and browser sessions), one's own password and MFA."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request, Response

from medops.api.deps import (
    API_PREFIX,
    CSRF_COOKIE,
    SESSION_COOKIE,
    ServicesDep,
    public,
    require,
)
from medops.auth.schemas import (
    AccessToken,
    Me,
    MfaConfirm,
    MfaEnroll,
    MfaEnrollmentOut,
    PasswordChange,
    RecoveryCodes,
    RoleMatrix,
    SessionStarted,
    TokenOut,
)
from medops.config import Settings
from medops.context import Context
from medops.core.permissions import PERMISSION_DESCRIPTIONS, ROLE_PERMISSIONS, Permission
from medops.errors import CsrfError

router = APIRouter(prefix=f"{API_PREFIX}/auth", tags=["auth"])
Public = Annotated[Context, Depends(public)]
Self = Annotated[Context, Depends(require(Permission.SELF))]
Username = Annotated[str, Form(min_length=1, max_length=64)]
Password = Annotated[str, Form(min_length=1, max_length=1024)]
Otp = Annotated[str | None, Form(max_length=16)]


@router.post("/token", name="auth.login", responses={401: {}, 429: {}})
async def login(
    services: ServicesDep, ctx: Public, username: Username, password: Password, otp: Otp = None
) -> AccessToken:
    """OAuth2 password flow (plus ``otp`` when MFA is enrolled): a bearer access token.
    After failed logins on the account the answer comes only after a delay; an address with
    too many failures gets 429 with Retry-After."""
    result = await services.logins.attempt_login(ctx, username, password, otp, kind="login")
    return AccessToken(
        access_token=result.secret, expires_at=result.expires_at, restriction=result.restriction
    )


@router.post("/session", name="auth.session", responses={401: {}, 429: {}})
async def start_session(
    request: Request,
    response: Response,
    services: ServicesDep,
    ctx: Public,
    username: Username,
    password: Password,
    otp: Otp = None,
) -> SessionStarted:
    """Browser login: sets the session cookie (Secure, HttpOnly, SameSite=Strict) and returns
    the CSRF token to send as ``X-CSRF-Token`` with every change. A form posted from another
    site (login CSRF) is refused by its Origin header."""
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.url.netloc:
        raise CsrfError("a login form must be posted from this server's own pages")
    result = await services.logins.attempt_login(ctx, username, password, otp, kind="session")
    assert result.csrf_token is not None
    _cookie(response, services.settings, SESSION_COOKIE, result.secret, readable=False)
    # The console's script reads this copy of the CSRF token and sends it as X-CSRF-Token
    # (double submit): another site can neither read it nor make the browser send it.
    _cookie(response, services.settings, CSRF_COOKIE, result.csrf_token, readable=True)
    return SessionStarted(
        csrf_token=result.csrf_token, expires_at=result.expires_at, restriction=result.restriction
    )


def _cookie(
    response: Response, settings: Settings, name: str, value: str, *, readable: bool
) -> None:
    """A cookie of the browser session: for its whole length, the whole site, Secure (unless
    configured off), SameSite=Strict; HttpOnly unless the console's script must read it."""
    response.set_cookie(
        name,
        value,
        max_age=settings.session_max_hours * 3600,
        path="/",
        secure=settings.cookie_secure,
        httponly=not readable,
        samesite="strict",
    )


@router.post("/logout", name="session.logout", status_code=204)
def logout(response: Response, services: ServicesDep, ctx: Self) -> None:
    """End the login this request came with (token or cookie)."""
    services.logins.logout(ctx)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")


@router.get("/sessions", name="session.list")
def list_sessions(services: ServicesDep, ctx: Self) -> list[TokenOut]:
    """The caller's live logins (CLI and browser); revoke one with DELETE /api/v1/tokens/{id}."""
    return services.logins.list_sessions(ctx)


@router.post("/sessions/revoke-all", name="session.revoke-all")
def logout_everywhere(response: Response, services: ServicesDep, ctx: Self) -> dict[str, int]:
    """Log out everywhere: end every login of the caller, this one included."""
    ended = services.logins.logout_everywhere(ctx)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return {"sessions_ended": ended}


@router.get("/me", name="auth.me")
def me(ctx: Self) -> Me:
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
        emergency_permissions=sorted(p.value for p in actor.emergency),
        restriction=actor.restriction,
    )


@router.get("/roles", name="auth.roles")
def roles(_ctx: Self) -> RoleMatrix:
    """The role -> permission matrix the server enforces."""
    return RoleMatrix(
        permissions={p.value: PERMISSION_DESCRIPTIONS[p] for p in Permission},
        roles={r.value: sorted(p.value for p in perms) for r, perms in ROLE_PERMISSIONS.items()},
    )


@router.post("/password", name="user.password-change", status_code=204)
def change_password(body: PasswordChange, services: ServicesDep, ctx: Self) -> None:
    """Change one's own password (the current one is checked); other logins end."""
    services.logins.change_password(ctx, body.current_password, body.new_password)


@router.post("/mfa/enroll", name="mfa.enroll", responses={401: {}, 429: {}})
def enroll_mfa(body: MfaEnroll, services: ServicesDep, ctx: Self) -> MfaEnrollmentOut:
    """Start TOTP enrollment with the account's ``password``: secret, otpauth URI and QR code
    (PNG data URI)."""
    return services.mfa.enroll(ctx, body.password)


@router.post("/mfa/confirm", name="mfa.enable")
def confirm_mfa(body: MfaConfirm, services: ServicesDep, ctx: Self) -> RecoveryCodes:
    """Activate TOTP with a first code; returns ten one-time recovery codes, shown once."""
    return services.mfa.confirm(ctx, body.code)
