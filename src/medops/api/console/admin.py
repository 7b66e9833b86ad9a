"""The admin pages: user accounts (``users:read``; their actions for ``users:manage``), the
role -> permission matrix, and the review of break-glass grants (``breakglass:review``).

Every action is a form console.js sends to the API (``/api/v1/users/...``,
``/api/v1/breakglass/{id}/review``), so the API's permission checks and audit apply. A
service token's secret is shown once, in the form that issued it (``data-show``: console.js
writes it into the form instead of reloading), and never again. An admin cannot list another
user's tokens or sessions through the API, so these pages do not either.

Break-glass uses are audit records (``breakglass.use``): the page links an auditor to them;
an admin, who may not read the audit trail, sees no count.
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Depends, Path
from fastapi.responses import HTMLResponse, Response

from medops.api.console.audit import stamp
from medops.api.console.errors import CONSOLE_TAG
from medops.api.console.layout import (
    action_form,
    badge,
    cell,
    definitions,
    field,
    link,
    notice,
    page,
    section,
    table,
    token_form,
    viewer_of,
    when,
)
from medops.api.deps import ServicesDep, require
from medops.auth.schemas import USERNAME_PATTERN, BreakGlassOut, UserOut
from medops.auth.status import AccountStatus, account_status
from medops.context import Actor, Context
from medops.core.permissions import (
    PERMISSION_DESCRIPTIONS,
    ROLE_PERMISSIONS,
    Permission,
    Role,
)
from medops.core.svg import esc
from medops.errors import NotFoundError

router = APIRouter(include_in_schema=False, tags=[CONSOLE_TAG])
Readers = Annotated[Context, Depends(require(Permission.USERS_READ))]
Reviewers = Annotated[Context, Depends(require(Permission.BREAKGLASS_REVIEW))]
USERS: Final = "/api/v1/users"
ROLES: Final = [(r.value, r.value) for r in Role]


def _state(user: UserOut, status: AccountStatus, now_locked: bool) -> str:
    parts = [badge("active", "ok") if user.active else badge("disabled", "bad")]
    if status.failed_logins:
        parts.append(badge(f"{status.failed_logins} failed login(s)", "warn"))
    if now_locked:
        parts.append(badge("re-authentication locked", "bad"))
    if user.must_change_password:
        parts.append(badge("must change password", "warn"))
    return " ".join(parts)


def _locked(status: AccountStatus, services: ServicesDep) -> bool:
    until = status.reauth_locked_until
    return until is not None and until > services.clock.now()


def _create_form() -> str:
    fields = (
        field("username", "Username", required=True, autocomplete="off",
              hint="lower case: letters, digits, '.', '_' and '-'")
        + field("full_name", "Full name", hint="printed with the user's electronic signatures")
        + field("role", "Role", value=Role.CLINICIAN.value, options=ROLES, required=True)
        + field("password", "Initial password", kind="password", required=True,
                autocomplete="new-password", hint="the user must change it at first login")
    )  # fmt: skip
    return section("Create a user", action_form(USERS, fields, submit="Create user"),
                   anchor="create")  # fmt: skip


def _matrix() -> str:
    roles = list(Role)
    rows = [
        [f"<code>{esc(p.value)}</code>", esc(PERMISSION_DESCRIPTIONS[p])]
        + [
            '<span class="yes">yes</span>'
            if p in ROLE_PERMISSIONS[r]
            else '<span class="no">–</span>'
            for r in roles
        ]
        for p in Permission
    ]
    return section(
        "Roles and permissions",
        table(
            ["permission", "what it allows", *(r.value for r in roles)],
            rows,
            caption="The role → permission matrix the server enforces (GET /api/v1/auth/roles).",
        ),
        anchor="roles",
    )


@router.get("/admin/users", name="console.users", response_class=HTMLResponse)
def users_page(services: ServicesDep, ctx: Readers) -> Response:
    """Every account with role, full name, MFA, state and last login; for administrators the
    form that creates one; the role matrix."""
    actor = viewer_of(ctx)
    users = services.identity.list_users()
    statuses = account_status(services.db)
    rows = []
    for user in users:
        status = statuses.get(user.username, AccountStatus())
        rows.append([
            link(f"/admin/users/{user.username}", user.username),
            cell(user.full_name),
            esc(user.role.value),
            cell(user.mfa_enabled),
            _state(user, status, _locked(status, services)),
            esc(when(status.last_login_at)),
            esc(when(user.created_at)),
        ])  # fmt: skip
    body = table(
        ["username", "full name", "role", "MFA", "state", "last login", "created"],
        rows,
        caption="Last login: the latest sign-in still on record (CLI or browser).",
        empty="No account yet.",
    )
    if actor.can(Permission.USERS_MANAGE):
        body += _create_form()
    body += _matrix()
    return page("Users", body, actor=actor, active="users", crumbs=[("Users", None)])


def _user_actions(user: UserOut, status: AccountStatus) -> str:
    base = f"{USERS}/{user.username}"
    here = f"/admin/users/{user.username}"
    forms = []
    if user.active:
        forms.append(action_form(f"{base}/disable", "", submit="Disable account", danger=True,
                                 confirm=f"Disable {user.username}? Their tokens stop working.",
                                 redirect=here))  # fmt: skip
    else:
        forms.append(action_form(f"{base}/enable", "", submit="Enable account", redirect=here))
    keep = field("keep_tokens", "Keep the account's API tokens (service accounts only)",
                 kind="checkbox", value="true", json_type="boolean")  # fmt: skip
    forms.append(
        action_form(f"{base}/password-reset",
                    field("password", "Temporary password", kind="password", required=True,
                          autocomplete="new-password") + keep,
                    submit="Reset password", confirm="Their logins end.", redirect=here)
    )  # fmt: skip
    if user.mfa_enabled:
        forms.append(action_form(f"{base}/mfa-reset", keep.replace("f-keep_tokens", "f-keep_mfa"),
                                 submit="Reset MFA", danger=True, redirect=here,
                                 confirm=f"Remove {user.username}'s authenticator?"))  # fmt: skip
    forms.append(action_form(f"{base}/full-name",
                             field("full_name", "Full name", value=user.full_name or "",
                                   required=True),
                             submit="Set full name", method="PUT", redirect=here))  # fmt: skip
    if status.failed_logins or status.reauth_locked_until is not None:
        forms.append(action_form(f"{base}/unlock", "", submit="Unlock", redirect=here))
    forms.append(_token_form(user))
    return section("Actions", '<div class="actions">' + "".join(forms) + "</div>",
                   anchor="actions")  # fmt: skip


def _token_form(user: UserOut) -> str:
    """The form that issues an API token to the account (its secret shown once)."""
    return token_form(f"{USERS}/{user.username}/tokens")


@router.get("/admin/users/{username}", name="console.user", response_class=HTMLResponse)
def user_page(
    services: ServicesDep,
    ctx: Readers,
    username: Annotated[str, Path(pattern=USERNAME_PATTERN)],
) -> Response:
    """One account: its facts and state; for administrators, what can be done to it."""
    actor = viewer_of(ctx)
    user = next((u for u in services.identity.list_users() if u.username == username), None)
    if user is None:
        raise NotFoundError(f"user {username!r} does not exist")
    status = account_status(services.db).get(username, AccountStatus())
    facts = definitions(
        [
            ("Username", esc(user.username)),
            ("Full name", cell(user.full_name)),
            ("Role", esc(user.role.value)),
            ("State", _state(user, status, _locked(status, services))),
            ("MFA enrolled", cell(user.mfa_enabled)),
            ("Last login", esc(when(status.last_login_at))),
            ("Created", esc(when(user.created_at))),
            ("Disabled", esc(when(user.disabled_at))),
            ("Account id", f"<code>{esc(user.id)}</code>"),
        ]
    )
    body = facts + notice(
        "Tokens and sessions are listed only to their owner (GET /api/v1/tokens); an "
        "administrator can end them by disabling the account or resetting its password.",
        "info",
    )
    if actor.can(Permission.USERS_MANAGE):
        body += _user_actions(user, status)
    crumbs = [("Users", "/admin/users"), (username, None)]
    return page(f"User {username}", body, actor=actor, active="users", crumbs=crumbs)


def _grant_row(grant: BreakGlassOut, viewer: Actor) -> list[str]:
    review = (
        esc(f"{grant.reviewed_by} at {when(grant.reviewed_at)}: ") + cell(grant.review_note)
        if grant.reviewed_at is not None
        else badge("pending", "warn")
    )
    uses = "—"
    if viewer.can(Permission.AUDIT_READ):
        window = {"since": grant.granted_at.isoformat(), "until": grant.expires_at.isoformat()}
        uses = link("/audit", "in the audit trail", actor=grant.username,
                    action="breakglass.use", **window)  # fmt: skip
    return [
        esc(grant.id),
        esc(grant.username),
        f"<code>{esc(grant.permission)}</code>",
        cell(grant.resource),
        cell(grant.reason),
        esc(stamp(grant.granted_at)),
        esc(stamp(grant.expires_at)) + (" " + badge("active", "warn") if grant.active else ""),
        uses,
        review,
    ]


def _review_form(grant: BreakGlassOut, viewer: Actor) -> str:
    if grant.username == viewer.username:
        return f"<h3>{esc(grant.id)}</h3>" + notice(
            "Your own grant: someone else reviews it.", "info"
        )
    note = field(f"note-{grant.id}", "Review note", kind="textarea", required=True,
                 hint="3 to 500 characters: was the access justified, what follows")  # fmt: skip
    # The API's body is {"note": ...}: the field's id is per grant, its name is "note".
    note = note.replace(f'name="note-{esc(grant.id)}"', 'name="note"')
    return (
        f"<h3>{esc(grant.id)} · {esc(grant.username)} · {esc(grant.permission)}</h3>"
        + action_form(f"/api/v1/breakglass/{grant.id}/review", note, submit="Record review")
    )


@router.get("/admin/break-glass", name="console.breakglass", response_class=HTMLResponse)
def breakglass_page(services: ServicesDep, ctx: Reviewers) -> Response:
    """Break-glass grants, newest first, with their review; a review form for each grant
    still pending."""
    viewer = viewer_of(ctx)
    grants = services.breakglass.list()
    body = table(
        ["grant", "holder", "permission", "resource", "reason", "granted", "expires", "uses",
         "review"],
        [_grant_row(g, viewer) for g in grants],
        caption="Newest first. Times in UTC.",
        empty="No break-glass grant has been taken.",
    )  # fmt: skip
    pending = [g for g in grants if g.reviewed_at is None]
    if pending:
        body += section("Pending reviews", "".join(_review_form(g, viewer) for g in pending),
                        anchor="pending")  # fmt: skip
    return page("Break-glass", body, actor=viewer, active="break-glass",
                crumbs=[("Break-glass", None)])  # fmt: skip
