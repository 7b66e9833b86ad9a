"""PagerDuty Events API v2 (``POST https://events.pagerduty.com/v2/enqueue``; ``url``
overrides it, e.g. for the EU service region).

One PagerDuty incident per alert group: ``dedup_key`` is the group key (hashed when longer
than PagerDuty's 255 characters), so a repeat or an escalation updates the incident rather
than opening another. ``event_action``: ``resolve`` when the group resolved, ``acknowledge``
when every alert of it was acknowledged in medops, ``trigger`` otherwise. The routing key is
the receiver's secret.
"""

from __future__ import annotations

import hashlib
from typing import Any

from medops.alerting.links import Links
from medops.alerting.receivers import render
from medops.alerting.receivers.base import post_json
from medops.alerting.schemas import NotificationPayload, ReceiverConfig
from medops.core.canonical import canonical_bytes, utc_text

DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"
SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}
MAX_DEDUP = 255
MAX_SUMMARY = 1024


def dedup_key(group_key: str) -> str:
    """The group key, or its SHA-256 when PagerDuty would refuse its length."""
    if len(group_key) <= MAX_DEDUP:
        return group_key
    return "sha256:" + hashlib.sha256(group_key.encode()).hexdigest()


def event_action(payload: NotificationPayload) -> str:
    if payload.status == "resolved":
        return "resolve"
    if payload.alerts and all(a.state == "acknowledged" for a in payload.alerts):
        return "acknowledge"
    return "trigger"


def event(payload: NotificationPayload, links: Links, routing_key: str) -> dict[str, Any]:
    """The Events API v2 body."""
    action = event_action(payload)
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup_key(payload.group_key),
    }
    if action != "trigger":
        return body
    first = payload.alerts[0] if payload.alerts else None
    body["payload"] = {
        "summary": render.title(payload)[:MAX_SUMMARY],
        "source": payload.group_labels.get("deployment", "medops"),
        "severity": SEVERITY[render.severity(payload)],
        "timestamp": utc_text(first.starts_at if first else payload.created_at),
        "component": payload.group_labels.get("deployment", "medops"),
        "group": payload.group_labels.get("team", ""),
        "class": first.name if first else "",
        "custom_details": {
            "kind": payload.kind,
            "level": payload.level,
            "oncall": payload.oncall,
            "alerts": [
                {"name": a.name, "severity": a.severity, "state": a.state,
                 "summary": render.summary(a), "value": a.value, "labels": a.labels}
                for a in payload.alerts
            ],
        },
    }  # fmt: skip
    body["client"] = "medops"
    body["client_url"] = links.console("/alerts")
    body["links"] = [
        {"href": links.alert(a.id, a.evidence).acknowledge, "text": f"Acknowledge {a.name}"}
        for a in payload.alerts
    ]
    return body


class PagerDutyReceiver:
    """Sends Events API v2 events."""

    def __init__(self, config: ReceiverConfig, routing_key: str) -> None:
        self._url = config.url or DEFAULT_URL
        self._key = routing_key

    def send(self, payload: NotificationPayload, links: Links) -> None:
        post_json(self._url, canonical_bytes(event(payload, links, self._key)))
