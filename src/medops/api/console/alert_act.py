"""The page a notification's acknowledge or resolve link opens: ``GET /alerts/act?token=``
shows the alert and asks the signed-in person to confirm (a mail scanner that follows links
changes nothing); ``POST`` (sent by the page's form, with the session's CSRF token) verifies
the token again and acknowledges or resolves the alert as that person, audited by the alert
service. The token only says which alert, which action, until when (and for whom, when made
for one user); the permission is the person's own ``alerts:respond``."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from medops.alerting.links import LinkClaim, load_key, verify
from medops.api.console.errors import CONSOLE_TAG
from medops.api.console.layout import (
    action_form,
    badge,
    definitions,
    field,
    notice,
    page,
    viewer_of,
    when,
)
from medops.api.deps import ServicesDep, require
from medops.context import Context
from medops.core.permissions import Permission
from medops.core.svg import esc
from medops.errors import PermissionDeniedError, ServiceUnavailableError
from medops.services import Services

router = APIRouter(include_in_schema=False, tags=[CONSOLE_TAG])
Responder = Annotated[Context, Depends(require(Permission.ALERTS_RESPOND))]
Token = Annotated[str, Query(min_length=10, max_length=2000)]
WORDS = {"acknowledge": "Acknowledge", "resolve": "Resolve"}


class ActBody(BaseModel):
    """The confirmation: an optional note kept with the acknowledgement or resolution."""

    note: str | None = Field(default=None, max_length=1000)


def _alerts(services: Services) -> Any:
    """The alert service (the engine's ``AlertService``)."""
    alerts = getattr(services, "alerts", None)
    if alerts is None:
        raise ServiceUnavailableError("alerting is not installed on this server")
    return alerts


def _claim(services: Services, ctx: Context, token: str) -> LinkClaim:
    claim = verify(load_key(services.settings), token, services.clock.now())
    actor = viewer_of(ctx)
    if claim.user is not None and claim.user != actor.username:
        raise PermissionDeniedError("this link was made for another user")
    return claim


@router.get("/alerts/act", name="console.alert_act", response_class=HTMLResponse)
def act_page(services: ServicesDep, ctx: Responder, token: Token) -> Response:
    """The alert the link names, and a form to confirm the action."""
    claim = _claim(services, ctx, token)
    found = _alerts(services).get(claim.alert_id)
    word = WORDS[claim.action]
    body = definitions(
        [
            ("Alert", esc(found.name)),
            ("Deployment", esc(found.deployment or "—")),
            ("Severity", badge(found.severity, "bad" if found.severity == "critical" else "warn")),
            ("State", badge(found.state, "muted")),
            ("Summary", esc(found.annotations.get("summary", ""))),
            ("Started", when(found.started_at)),
            ("Link valid until", when(claim.expires)),
        ]
    )
    open_states = {"acknowledge": {"firing"}, "resolve": {"firing", "acknowledged", "pending"}}
    if found.state in open_states[claim.action]:
        body += action_form(
            f"/alerts/act?token={quote(token, safe='')}",
            field("note", "Note", hint="Optional: what you are doing about it."),
            submit=f"{word} this alert",
        )
    else:
        body += notice(f"This alert is {found.state}: nothing to {claim.action}.", "ok")
    return page(f"{word} {found.name}", body, actor=viewer_of(ctx))


@router.post("/alerts/act", name="console.alert_act_confirm")
async def act(services: ServicesDep, ctx: Responder, token: Token, body: ActBody) -> Any:
    """Acknowledge or resolve the alert the token names, as the signed-in person."""
    claim = _claim(services, ctx, token)
    alerts = _alerts(services)
    method = alerts.acknowledge if claim.action == "acknowledge" else alerts.resolve
    return await run_in_threadpool(method, ctx, claim.alert_id, body.note)
