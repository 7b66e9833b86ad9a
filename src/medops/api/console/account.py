"""Signing in and one's own account: the sign-in page, the start page, the account page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from medops.api.console.errors import CONSOLE_TAG, safe_next
from medops.api.console.layout import (
    action_form,
    badge,
    cell,
    definitions,
    field,
    notice,
    page,
    section,
    sections_for,
    table,
    token_form,
    viewer_of,
    when,
)
from medops.api.deps import SESSION_COOKIE, ServicesDep, public, require
from medops.context import Actor, Context
from medops.core.permissions import Permission
from medops.core.svg import esc
from medops.services import Services

router = APIRouter(include_in_schema=False, tags=[CONSOLE_TAG])
Public = Annotated[Context, Depends(public)]
Self = Annotated[Context, Depends(require(Permission.SELF))]


@router.get("/login", name="console.login", response_class=HTMLResponse)
def login_page(
    request: Request,
    _ctx: Public,
    next_page: Annotated[str | None, Query(alias="next", max_length=500)] = None,
) -> Response:
    """The sign-in form: user name, password and, when MFA is enrolled, the one-time code."""
    target = safe_next(next_page)
    if request.cookies.get(SESSION_COOKIE) and next_page is None:
        return RedirectResponse("/", status_code=303)
    fields = (
        field("username", "User name", required=True, autocomplete="username")
        + field("password", "Password", kind="password", required=True,
                autocomplete="current-password")
        + field("otp", "One-time code", autocomplete="one-time-code",
                hint="Six digits from your authenticator app, or a recovery code. "
                "Leave empty if your account has no MFA yet.")
    )  # fmt: skip
    body = (
        f'<form class="login" data-next="{esc(target)}">{fields}'
        '<button type="submit" class="primary">Sign in</button>'
        '<p class="status" role="status" aria-live="polite"></p></form>'
        "<p>Sessions end after a period without use and at a fixed maximum; "
        "every sign-in is recorded in the audit trail.</p>"
    )
    return page("Sign in", body, actor=None)


def _tokens(services: Services, ctx: Context, actor: Actor) -> str:
    """The viewer's API tokens (never their secrets), each with a revoke action, and the form
    that issues one to those who may."""
    tokens = [t for t in services.identity.list_tokens(ctx) if t.kind == "api"]
    rows = [
        [cell(t.name), cell(when(t.created_at)), cell(when(t.last_used_at)),
         cell(when(t.expires_at)),
         badge("revoked", "muted") if t.revoked_at else action_form(
             f"/api/v1/tokens/{t.id}", "", submit="Revoke", method="DELETE", danger=True,
             confirm=f"Revoke the token {t.name!r}? It stops working at once.")]
        for t in tokens
    ]  # fmt: skip
    listed = table(["name", "created", "last used", "expires", ""], rows, empty="No API token.")
    if actor.can(Permission.TOKENS_CREATE):
        listed += token_form("/api/v1/tokens")
    return listed


@router.get("/account", name="console.account", response_class=HTMLResponse)
def account_page(services: ServicesDep, ctx: Self) -> Response:
    """Who is signed in, with what permissions, and their live sessions."""
    actor = viewer_of(ctx)
    body = ""
    if actor.restriction == "mfa-enrollment":
        body += notice(
            "Your role requires MFA. Enroll with 'medops mfa enroll' on the command line "
            "(or POST /api/v1/auth/mfa/enroll), then sign in again with a one-time code.",
            "warn",
        )
    elif actor.restriction == "password-change":
        body += notice("Change your password before anything else.", "warn")
        body += action_form(
            "/api/v1/auth/password",
            field("current_password", "Current password", kind="password", required=True,
                  autocomplete="current-password")
            + field("new_password", "New password", kind="password", required=True,
                    autocomplete="new-password"),
            submit="Change password",
            redirect="/login",
        )  # fmt: skip
    body += definitions(
        [
            ("User", esc(actor.username)),
            ("Role", badge(actor.role, "muted")),
            ("Signed in with", esc(actor.auth_method)),
            ("Permissions", esc(", ".join(sorted(p.value for p in actor.permissions)))),
            ("Pages", " · ".join(f'<a href="{s.href}">{esc(s.label)}</a>'
                                  for s in sections_for(actor))),
        ]
    )  # fmt: skip
    sessions = services.logins.list_sessions(ctx)
    rows = [
        [cell(s.name), cell(s.kind), cell(when(s.created_at)), cell(when(s.last_used_at)),
         cell(when(s.expires_at)), "this one" if s.id == actor.token_id else ""]
        for s in sessions
    ]  # fmt: skip
    body += section(
        "Your sessions",
        table(["name", "kind", "started", "last used", "ends", ""], rows),
    )
    body += section("Your API tokens", _tokens(services, ctx, actor), anchor="tokens")
    return page("Your account", body, actor=actor, active="account")
