"""Text shared by the chat, paging and mail receivers: a title, one line per alert, and the
HTML of a mail. Only what a ``NotificationPayload`` carries (rule, labels, the compared value,
annotations, links): never a patient identifier or a raw feature value."""

from __future__ import annotations

from html import escape

from medops.alerting.links import Links
from medops.alerting.schemas import NotificationAlert, NotificationPayload

KIND_WORDS = {
    "firing": "FIRING",
    "repeat": "STILL FIRING",
    "escalation": "ESCALATED",
    "resolved": "RESOLVED",
}


def title(payload: NotificationPayload) -> str:
    """``[FIRING:2] AccuracyDrop diabetes`` (group labels' values after the count)."""
    word = KIND_WORDS[payload.kind]
    if payload.kind == "escalation":
        word += f" L{payload.level}"
    shown = " ".join(payload.group_labels[k] for k in sorted(payload.group_labels))
    return f"[{word}:{len(payload.alerts)}] {shown}".strip()


def severity(payload: NotificationPayload) -> str:
    """The most severe of the group's alerts."""
    order = {"critical": 0, "warning": 1, "info": 2}
    if not payload.alerts:
        return "info"
    return min((a.severity for a in payload.alerts), key=order.__getitem__)


def summary(alert: NotificationAlert) -> str:
    """The rule's summary annotation, or its name and labels."""
    text = alert.annotations.get("summary")
    if text:
        return text
    labels = ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()) if k != "alertname")
    return f"{alert.name} ({labels})"


def value_text(alert: NotificationAlert) -> str:
    return "" if alert.value is None else f"{alert.value:.6g}"


def plain(payload: NotificationPayload, links: Links) -> str:
    """The notification as plain text (mail, Opsgenie's description)."""
    lines = [title(payload), ""]
    if payload.oncall:
        lines.append(f"On call: {payload.oncall}")
    for alert in payload.alerts:
        urls = links.alert(alert.id, alert.evidence)
        lines.append(f"* {alert.name} [{alert.severity}] {alert.state}: {summary(alert)}")
        if alert.value is not None:
            lines.append(f"  value: {value_text(alert)}")
        lines.append("  labels: " + ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items())))
        if "runbook_url" in alert.annotations:
            lines.append(f"  runbook: {alert.annotations['runbook_url']}")
        if urls.evidence:
            lines.append(f"  evidence: {urls.evidence}")
        if payload.status == "firing":
            lines.append(f"  acknowledge: {urls.acknowledge}")
            lines.append(f"  resolve: {urls.resolve}")
    lines += ["", f"Console: {links.console('/alerts')}"]
    return "\n".join(lines) + "\n"


def html(payload: NotificationPayload, links: Links) -> str:
    """The notification as a small self-contained HTML page (mail)."""
    rows = []
    for alert in payload.alerts:
        urls = links.alert(alert.id, alert.evidence)
        actions = []
        if urls.evidence:
            actions.append(f'<a href="{escape(urls.evidence)}">evidence</a>')
        if "runbook_url" in alert.annotations:
            actions.append(f'<a href="{escape(alert.annotations["runbook_url"])}">runbook</a>')
        if payload.status == "firing":
            actions.append(f'<a href="{escape(urls.acknowledge)}">acknowledge</a>')
            actions.append(f'<a href="{escape(urls.resolve)}">resolve</a>')
        rows.append(
            f"<tr><td>{escape(alert.name)}</td><td>{escape(alert.severity)}</td>"
            f"<td>{escape(alert.state)}</td><td>{escape(summary(alert))}</td>"
            f"<td>{escape(value_text(alert))}</td><td>{' · '.join(actions)}</td></tr>"
        )
    oncall = f"<p>On call: {escape(payload.oncall)}</p>" if payload.oncall else ""
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>'
        f"{escape(title(payload))}</title></head><body>"
        f"<h1>{escape(title(payload))}</h1>{oncall}"
        '<table border="1" cellpadding="4" cellspacing="0"><tr><th>alert</th><th>severity</th>'
        "<th>state</th><th>summary</th><th>value</th><th></th></tr>"
        + "".join(rows)
        + f'</table><p><a href="{escape(links.console("/alerts"))}">Open the console</a></p>'
        "</body></html>"
    )
