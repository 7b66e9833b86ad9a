"""How a console page answers a refusal or an error: as a page, not as problem+json.

A page asked for without a valid session goes to the sign-in page (303, with ``next`` set to
the page); a login that must first enroll MFA or change its password goes to its account
page, which says how; a page the role may not open is a 403 page that says which permission
it needs; any other error is a page with the problem's title and detail. The refusal is
audited exactly as the API's (api/errors.py calls this after recording it).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from medops.api.console.layout import notice, page
from medops.api.deps import CONTEXT_STATE
from medops.context import Context
from medops.errors import ActionRequiredError, MedopsError

CONSOLE_TAG = "console"


def is_console(request: Request) -> bool:
    """Whether the request was routed to a console page."""
    route: Any = request.scope.get("route")
    return CONSOLE_TAG in (getattr(route, "tags", None) or ())


def safe_next(target: str | None) -> str:
    """A ``next`` address only when it is a path on this server (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def console_error(request: Request, exc: MedopsError, status: int) -> Response:
    """The page answering ``exc`` on a console route."""
    if status == 401:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(safe_next(here), safe='/')}", status_code=303)
    if isinstance(exc, ActionRequiredError):  # enroll MFA or change the password first
        return RedirectResponse("/account", status_code=303)
    ctx: Context | None = getattr(request.state, CONTEXT_STATE, None)
    actor = ctx.actor if ctx is not None else None
    titles = {403: "Not permitted", 404: "Not found"}
    title = titles.get(status, exc.title)
    body = notice(exc.message, "bad")
    if status == 403:
        body += (
            "<p>Ask an administrator if your work needs this page. "
            '<a href="/">Back to the start</a>.</p>'
        )
    return page(title, body, actor=actor, status=status)
