"""The page shell every console page shares, and the small pieces pages are built from.

A page is a string of HTML built with ``esc`` around every value that did not come from this
package. The shell links the one style sheet and the one script; there is no inline script
and no ``style`` attribute anywhere, so the Content-Security-Policy can be strict
(``CONSOLE_CSP``). Navigation shows only the sections the viewer's role may open.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from urllib.parse import urlencode

from fastapi.responses import HTMLResponse

import medops
from medops.context import Actor, Context
from medops.core.permissions import Permission
from medops.core.svg import esc

CONSOLE_CSP: Final = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
PAGE_HEADERS: Final = {
    "Content-Security-Policy": CONSOLE_CSP,
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class Section:
    key: str
    label: str
    href: str
    permission: Permission


SECTIONS: Final = (
    Section("overview", "Overview", "/deployments", Permission.DEPLOYMENTS_READ),
    Section("alerts", "Alerts", "/alerts", Permission.ALERTS_READ),
    Section("slo", "Service levels", "/slo", Permission.SLO_READ),
    Section("models", "Models", "/models", Permission.MODELS_READ),
    Section("datasets", "Datasets", "/datasets", Permission.DATA_READ),
    Section("lineage", "Lineage", "/lineage", Permission.LINEAGE_READ),
    Section("audit", "Audit", "/audit", Permission.AUDIT_READ),
    Section("users", "Users", "/admin/users", Permission.USERS_READ),
    Section("break-glass", "Break-glass", "/admin/break-glass", Permission.BREAKGLASS_REVIEW),
    Section("account", "Account", "/account", Permission.SELF),
)


def viewer_of(ctx: Context) -> Actor:
    """The signed-in actor of a page request (pages never run anonymously)."""
    assert ctx.actor is not None
    return ctx.actor


def sections_for(actor: Actor | None) -> list[Section]:
    """The sections ``actor`` may open, in menu order."""
    if actor is None:
        return []
    return [s for s in SECTIONS if actor.can(s.permission)]


def _nav(actor: Actor | None, active: str) -> str:
    if actor is None:
        return ""
    links = []
    for section in sections_for(actor):
        current = ' aria-current="page"' if section.key == active else ""
        links.append(f'<li><a href="{section.href}"{current}>{esc(section.label)}</a></li>')
    links.append('<li><a href="/docs">API</a></li>')
    who = (
        f'<span class="who">{esc(actor.username)} <span class="role">{esc(actor.role)}</span>'
        "</span>"
        '<form class="inline" data-api="/api/v1/auth/logout" data-redirect="/login">'
        '<button type="submit" class="link">Sign out</button></form>'
    )
    return (
        '<nav class="top" aria-label="Main"><a class="brand" href="/">medops</a>'
        f'<ul>{"".join(links)}</ul><div class="account">{who}</div></nav>'
    )


def crumbs_html(crumbs: Sequence[tuple[str, str | None]]) -> str:
    """A breadcrumb trail: (label, link or None for the current page)."""
    if not crumbs:
        return ""
    items = []
    for label, href in crumbs:
        if href is None:
            items.append(f'<li aria-current="page">{esc(label)}</li>')
        else:
            items.append(f'<li><a href="{esc(href)}">{esc(label)}</a></li>')
    return f'<nav class="crumbs" aria-label="Breadcrumb"><ol>{"".join(items)}</ol></nav>'


def document(
    title: str,
    body: str,
    *,
    actor: Actor | None,
    active: str = "",
    crumbs: Sequence[tuple[str, str | None]] = (),
) -> str:
    """The whole HTML document of a console page."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · medops</title>"
        '<link rel="stylesheet" href="/static/console.css">'
        '<script src="/static/console.js" defer></script>'
        f'</head><body>{_nav(actor, active)}<main id="main">{crumbs_html(crumbs)}'
        f"<h1>{esc(title)}</h1>{body}</main>"
        f"<footer><span>medops {esc(medops.__version__)}</span></footer></body></html>"
    )


def page(
    title: str,
    body: str,
    *,
    actor: Actor | None,
    active: str = "",
    crumbs: Sequence[tuple[str, str | None]] = (),
    status: int = 200,
) -> HTMLResponse:
    """A console page as an answer, with the console's security headers."""
    html = document(title, body, actor=actor, active=active, crumbs=crumbs)
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


# --- pieces -------------------------------------------------------------------------------


def fmt(value: object, digits: int = 3) -> str:  # noqa: PLR0911 (one return per kind)
    """A value for a table cell: numbers rounded, None as an em dash, times in UTC."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        return f"{value:.{digits}f}"
    if isinstance(value, datetime):
        return when(value)
    return str(value)


def when(moment: datetime | None) -> str:
    """A time as the console shows it: ISO date and minutes, in UTC."""
    if moment is None:
        return "—"
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def cell(value: object, digits: int = 3) -> str:
    """``fmt`` escaped, for values that are text, not markup."""
    return esc(fmt(value, digits))


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    caption: str | None = None,
    numeric: Sequence[int] = (),
    empty: str = "Nothing yet.",
) -> str:
    """A table whose cells are markup already (escape values with ``cell``)."""
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    if not body:
        return f'<p class="empty">{esc(empty)}</p>'
    head = "".join(
        f'<th scope="col" class="num">{esc(h)}</th>'
        if i in numeric
        else f'<th scope="col">{esc(h)}</th>'
        for i, h in enumerate(headers)
    )
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return (
        f'<div class="table-wrap"><table>{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


TONES: Final = {
    "ok": "ok",
    "stable": "ok",
    "signed": "ok",
    "passed": "ok",
    "warn": "warn",
    "warning": "warn",
    "pending": "warn",
    "insufficient-data": "muted",
    "drift": "bad",
    "critical": "bad",
    "failed": "bad",
}


def badge(text: str, tone: str | None = None) -> str:
    """A short status word, coloured by its tone (ok, warn, bad, muted) and never by colour
    alone: the word is always written."""
    kind = tone or TONES.get(text, "muted")
    for word in ("drift", "shift", "degrad", "fail", "critical", "refus", "denied"):
        if tone is None and word in text:
            kind = "bad"
    return f'<span class="badge {kind}">{esc(text)}</span>'


def link(href: str, label: str, **query: object) -> str:
    """A link with an escaped label; ``query`` values are URL-encoded."""
    target = href + (
        "?" + urlencode({k: v for k, v in query.items() if v is not None}) if query else ""
    )
    return f'<a href="{esc(target)}">{esc(label)}</a>'


def definitions(items: Iterable[tuple[str, str]]) -> str:
    """A definition list; values are markup already."""
    rows = "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in items)
    return f'<dl class="facts">{rows}</dl>'


def section(title: str, body: str, *, anchor: str | None = None) -> str:
    """A titled section of a page."""
    ident = f' id="{esc(anchor)}"' if anchor else ""
    return f"<section{ident}><h2>{esc(title)}</h2>{body}</section>"


def notice(text: str, tone: str = "info") -> str:
    """A boxed message."""
    return f'<p class="notice {tone}">{esc(text)}</p>'


def action_form(
    api: str,
    fields: str,
    *,
    submit: str,
    method: str = "POST",
    redirect: str | None = None,
    confirm: str | None = None,
    danger: bool = False,
) -> str:
    """A form console.js sends to the API as JSON (with the CSRF token); on success it goes to
    ``redirect`` (or reloads). Answers' problems are shown in the form's status line."""
    attrs = f' data-api="{esc(api)}" data-method="{esc(method)}"'
    if redirect:
        attrs += f' data-redirect="{esc(redirect)}"'
    if confirm:
        attrs += f' data-confirm="{esc(confirm)}"'
    kind = "danger" if danger else "primary"
    return (
        f'<form class="action"{attrs}>{fields}'
        f'<button type="submit" class="{kind}">{esc(submit)}</button>'
        '<p class="status" role="status" aria-live="polite"></p></form>'
    )


def field(
    name: str,
    label: str,
    *,
    kind: str = "text",
    value: str = "",
    required: bool = False,
    autocomplete: str | None = None,
    hint: str | None = None,
    options: Sequence[tuple[str, str]] = (),
    json_type: str | None = None,
    ident: str | None = None,
) -> str:
    """One labelled input (or select, when ``options`` are given). ``ident`` makes its id
    unique where several forms on a page send the same field name."""
    ident = f"f-{ident or name}"
    req = " required" if required else ""
    auto = f' autocomplete="{esc(autocomplete)}"' if autocomplete else ""
    typed = f' data-json="{esc(json_type)}"' if json_type else ""
    described = f' aria-describedby="{ident}-hint"' if hint else ""
    if options:
        opts = "".join(
            f'<option value="{esc(v)}"{" selected" if v == value else ""}>{esc(t)}</option>'
            for v, t in options
        )
        control = f'<select id="{ident}" name="{esc(name)}"{req}{typed}{described}>{opts}</select>'
    elif kind == "textarea":
        control = (
            f'<textarea id="{ident}" name="{esc(name)}" rows="3"{req}{typed}{described}>'
            f"{esc(value)}</textarea>"
        )
    else:
        control = (
            f'<input id="{ident}" name="{esc(name)}" type="{esc(kind)}" value="{esc(value)}"'
            f"{req}{auto}{typed}{described}>"
        )
    note = f'<small id="{ident}-hint">{esc(hint)}</small>' if hint else ""
    return f'<div class="field"><label for="{ident}">{esc(label)}</label>{control}{note}</div>'


def token_form(api: str) -> str:
    """A form that issues an API token through ``api``; console.js (``data-show``) shows the
    answer's secret once in the form instead of reloading, and it is never shown again."""
    fields = field("name", "Token name", value="api", required=True, json_type="string")
    fields += field("expires_at", "Expires at (UTC, optional)", hint="e.g. 2026-01-31T00:00Z")
    return (
        f'<form class="action reveal" data-api="{esc(api)}" data-method="POST" '
        f'data-show="token">{fields}'
        '<button type="submit" class="primary">Issue API token</button>'
        '<p class="status" role="status" aria-live="polite"></p>'
        '<output class="secret" hidden></output>'
        "<small>The secret is shown once, here; copy it now.</small></form>"
    )
