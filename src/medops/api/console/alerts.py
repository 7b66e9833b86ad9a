"""The alert pages (``alerts:read``): what is firing, for whom, who took it, and silences.

``/alerts`` lists alerts (open ones first; a filter by state, deployment and team, or every
alert with ``resolved``), and the silences in force. ``/alerts/{id}`` shows one alert: its
rule, labels, the compared value, a link to the evidence (the monitoring window or the
deployment), its life (pending, firing, acknowledged, resolved, with who and when) and the
notifications sent for it. Acknowledge, resolve, silence and expire are forms console.js sends
to ``/api/v1/alerts/...`` (``alerts:respond``), so the API's checks and audit apply; a viewer
without that permission sees no form.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from medops.alerting.records import AlertOut, SilenceOut
from medops.alerting.schemas import ALERT_STATES, TEAMS, AlertState
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
    viewer_of,
)
from medops.api.deps import ServicesDep, require
from medops.context import Actor, Context
from medops.core.permissions import Permission
from medops.core.svg import esc
from medops.serving.schemas import DEPLOYMENT_NAME_PATTERN

router = APIRouter(include_in_schema=False, tags=[CONSOLE_TAG])
Reader = Annotated[Context, Depends(require(Permission.ALERTS_READ))]
API: Final = "/api/v1/alerts"
ALERT_ID: Final = r"^[A-Za-z0-9_-]{1,64}$"
STATE_TONES: Final = {"pending": "warn", "firing": "bad", "acknowledged": "warn", "resolved": "ok"}
SEVERITY_TONES: Final = {"critical": "bad", "warning": "warn", "info": "muted"}
SILENCE_HOURS: Final = 2


def _state(alert: AlertOut) -> str:
    parts = [badge(alert.state, STATE_TONES.get(alert.state))]
    if alert.silenced:
        parts.append(badge("silenced", "muted"))
    if alert.inhibited:
        parts.append(badge("inhibited", "muted"))
    return " ".join(parts)


def _labels(labels: dict[str, str]) -> str:
    return " ".join(f"<code>{esc(k)}={esc(v)}</code>" for k, v in sorted(labels.items()))


def _answer_forms(alert: AlertOut, *, ident: str, redirect: str | None = None) -> str:
    forms = []
    if alert.state == "firing":
        forms.append(
            action_form(
                f"{API}/{alert.id}/acknowledge",
                field("note", "Note", ident=f"ack-{ident}", hint="optional: what you are doing"),
                submit="Acknowledge",
                redirect=redirect,
            )
        )
    if alert.state != "resolved":
        forms.append(
            action_form(
                f"{API}/{alert.id}/resolve",
                field("note", "Note", ident=f"res-{ident}", hint="optional: why it is over"),
                submit="Resolve",
                redirect=redirect,
                confirm="Resolve this alert by hand? It fires again as a new alert if its "
                "condition still holds.",
            )
        )
    return "".join(forms)


def _silence_form(alert: AlertOut, services: ServicesDep) -> str:
    """Silence alerts like this one (same name and deployment) for a while, with a reason."""
    matchers = [{"label": "alertname", "op": "=", "value": alert.name}]
    if alert.deployment:
        matchers.append({"label": "deployment", "op": "=", "value": alert.deployment})
    ends = services.clock.now() + timedelta(hours=SILENCE_HOURS)
    hidden = (
        f'<input type="hidden" name="matchers" data-json="json" '
        f'value="{esc(json.dumps(matchers))}">'
    )
    fields = hidden + field(
        "ends_at",
        "Silenced until (UTC)",
        value=ends.strftime("%Y-%m-%dT%H:%MZ"),
        required=True,
        hint="notifications stop until then; the alert is still tracked",
    )
    fields += field("reason", "Reason", required=True, hint="recorded in the audit trail")
    what = ", ".join(f"{m['label']}={m['value']}" for m in matchers)
    return section(
        "Silence alerts like this",
        f"<p>Matches {esc(what)}.</p>"
        + action_form(f"{API}/silences", fields, submit="Silence", redirect="/alerts"),
        anchor="silence",
    )


def _alert_rows(alerts: list[AlertOut]) -> list[list[str]]:
    rows = []
    for a in alerts:
        rows.append(
            [
                link(f"/alerts/{a.id}", a.name),
                cell(a.deployment),
                badge(a.severity, SEVERITY_TONES.get(a.severity)),
                cell(a.team),
                _state(a),
                cell(a.value),
                cell(stamp(a.firing_at or a.started_at)),
                cell(a.acknowledged_by),
                esc(a.annotations.get("summary", "")),
            ]
        )
    return rows


def _silence_rows(silences: list[SilenceOut], can_respond: bool) -> list[list[str]]:
    rows = []
    for s in silences:
        matchers = " ".join(
            f"<code>{esc(m.label)}{esc(m.op)}{esc(m.value)}</code>" for m in s.matchers
        )
        action = (
            action_form(
                f"{API}/silences/{s.id}/expire",
                "",
                submit="Expire",
                confirm="End this silence now?",
                danger=True,
            )
            if can_respond and s.active
            else ""
        )
        state = badge("active", "warn") if s.active else badge("ended", "muted")
        rows.append(
            [matchers, cell(s.author), esc(s.reason), cell(stamp(s.starts_at)),
             cell(stamp(s.ends_at)), state, action]
        )  # fmt: skip
    return rows


def _filters(state: str | None, deployment: str | None, team: str | None, resolved: bool) -> str:
    states = [("", "open (not resolved)"), *((s, s) for s in ALERT_STATES)]
    teams = [("", "every team"), *((t, t) for t in TEAMS)]
    checked = " checked" if resolved else ""
    return (
        '<form class="filters" method="get" action="/alerts">'
        + field("state", "State", value=state or "", options=states)
        + field("deployment", "Deployment", value=deployment or "")
        + field("team", "Team", value=team or "", options=teams)
        + '<div class="field"><label for="f-resolved">'
        f'<input id="f-resolved" type="checkbox" name="resolved" value="true"{checked}> '
        "include resolved</label></div>"
        '<button type="submit">Show</button></form>'
    )


def _list_body(
    actor: Actor,
    alerts: list[AlertOut],
    silences: list[SilenceOut],
    filters: str,
) -> str:
    can_respond = actor.can(Permission.ALERTS_RESPOND)
    firing = sum(a.state == "firing" for a in alerts)
    summary = (
        notice(f"{firing} alert(s) firing and not acknowledged.", "warn")
        if firing
        else notice("Nothing firing unacknowledged.", "info")
    )
    body = summary + filters
    body += table(
        ["alert", "deployment", "severity", "team", "state", "value", "since", "taken by",
         "summary"],
        _alert_rows(alerts),
        caption="Newest first. Open an alert to acknowledge, resolve or silence it.",
        numeric=(5,),
        empty="No alert matches.",
    )  # fmt: skip
    body += section(
        "Silences",
        table(
            ["matchers", "author", "reason", "from", "until", "state", ""],
            _silence_rows(silences, can_respond),
            empty="No silence in force. Silence an alert from its page, or "
            "'medops alerts silence add'.",
        ),
        anchor="silences",
    )
    return body


@router.get("/alerts", name="console.alerts", response_class=HTMLResponse)
async def alerts_page(
    services: ServicesDep,
    ctx: Reader,
    state: Annotated[str | None, Query(max_length=16)] = None,
    deployment: Annotated[str | None, Query(max_length=64)] = None,
    team: Annotated[str | None, Query(max_length=32)] = None,
    resolved: bool = False,
) -> Response:
    """Alerts, newest first (open ones unless asked), and the silences in force."""
    actor = viewer_of(ctx)
    chosen: AlertState | None = next((s for s in ALERT_STATES if s == state), None)
    where = deployment if deployment and _valid_deployment(deployment) else None
    alerts = await run_in_threadpool(
        lambda: services.alerts.list_alerts(
            state=chosen, deployment=where, include_resolved=resolved, limit=500
        )
    )
    if team:
        alerts = [a for a in alerts if a.team == team]
    silences = await run_in_threadpool(services.alerts.list_silences)
    body = _list_body(actor, alerts, silences, _filters(chosen, where, team, resolved))
    return page("Alerts", body, actor=actor, active="alerts")


def _valid_deployment(name: str) -> bool:
    return re.match(DEPLOYMENT_NAME_PATTERN, name) is not None


def _life(alert: AlertOut) -> str:
    steps = [("pending since", stamp(alert.started_at))]
    if alert.firing_at:
        steps.append(("firing since", stamp(alert.firing_at)))
    if alert.acknowledged_at:
        note = f" — {alert.acknowledge_note}" if alert.acknowledge_note else ""
        steps.append(
            ("acknowledged", f"{stamp(alert.acknowledged_at)} by {alert.acknowledged_by}{note}")
        )
    if alert.resolved_at:
        who = f" by {alert.resolved_by}" if alert.resolved_by else " (condition ended)"
        note = f" — {alert.resolve_note}" if alert.resolve_note else ""
        steps.append(("resolved", f"{stamp(alert.resolved_at)}{who}{note}"))
    return definitions((k, esc(v)) for k, v in steps)


@router.get("/alerts/{alert_id}", name="console.alert", response_class=HTMLResponse)
async def alert_page(
    services: ServicesDep,
    ctx: Reader,
    alert_id: Annotated[str, Path(pattern=ALERT_ID)],
) -> Response:
    """One alert: rule, labels, value, evidence, its life and the notifications sent."""
    actor = viewer_of(ctx)
    alert = await run_in_threadpool(services.alerts.get, alert_id)
    annotations = alert.annotations
    facts = [
        ("state", _state(alert)),
        ("severity", badge(alert.severity, SEVERITY_TONES.get(alert.severity))),
        ("team", cell(alert.team)),
        ("deployment", link(f"/deployments/{alert.deployment}", alert.deployment)
         if alert.deployment else "—"),
        ("value compared", cell(alert.value)),
        ("labels", _labels(alert.labels)),
        ("notifications sent", cell(alert.notifications)),
    ]  # fmt: skip
    if alert.evidence:
        facts.append(("evidence", link(alert.evidence, alert.evidence)))
    runbook = annotations.get("runbook_url")
    if runbook:  # the built-in rules name a page of medops' docs, not an address to follow
        shown = (
            link(runbook, runbook)
            if runbook.startswith(("https://", "http://", "/"))
            else (f"<code>{esc(runbook)}</code>")
        )
        facts.append(("runbook", shown))
    body = ""
    if annotations.get("summary"):
        body += f'<p class="lead">{esc(annotations["summary"])}</p>'
    if annotations.get("description"):
        body += f"<p>{esc(annotations['description'])}</p>"
    body += definitions(facts) + section("Its life", _life(alert), anchor="life")
    if actor.can(Permission.ALERTS_RESPOND) and alert.state != "resolved":
        body += section(
            "Answer it", _answer_forms(alert, ident=alert.id, redirect=f"/alerts/{alert.id}")
        )
        body += _silence_form(alert, services)
    if actor.can(Permission.AUDIT_READ):
        body += section(
            "In the audit trail",
            link(
                "/audit",
                "Every transition of this alert",
                resource_type="alert",
                resource_id=alert.id,
            ),
        )
    crumbs = [("Alerts", "/alerts"), (alert.name, None)]
    return page(f"{alert.name}", body, actor=actor, active="alerts", crumbs=crumbs)
