"""Opsgenie Alert API (``https://api.opsgenie.com``; ``url`` overrides it, e.g. the EU
``https://api.eu.opsgenie.com``), authenticated with ``Authorization: GenieKey <secret>``.

One Opsgenie alert per group, its ``alias`` the group key (hashed past Opsgenie's 512
characters): firing, repeat and escalation create it (Opsgenie de-duplicates by alias);
``POST /v2/alerts/{alias}/acknowledge`` when every alert was acknowledged in medops, and
``/close`` when the group resolved, both with ``identifierType=alias``.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote

from medops.alerting.links import Links
from medops.alerting.receivers import render
from medops.alerting.receivers.base import post_json
from medops.alerting.schemas import NotificationPayload, ReceiverConfig
from medops.core.canonical import canonical_bytes

DEFAULT_URL = "https://api.opsgenie.com"
PRIORITY = {"critical": "P1", "warning": "P3", "info": "P5"}
MAX_MESSAGE = 130
MAX_ALIAS = 512
MAX_DESCRIPTION = 15000


def alias(group_key: str) -> str:
    if len(group_key) <= MAX_ALIAS:
        return group_key
    return "sha256:" + hashlib.sha256(group_key.encode()).hexdigest()


def request(payload: NotificationPayload, links: Links) -> tuple[str, dict[str, Any]]:
    """The path (under the API's base) and body of the call for ``payload``."""
    key = alias(payload.group_key)
    if payload.status == "resolved":
        path = f"/v2/alerts/{quote(key, safe='')}/close?identifierType=alias"
        return path, {"source": "medops", "note": "resolved in medops"}
    if payload.alerts and all(a.state == "acknowledged" for a in payload.alerts):
        path = f"/v2/alerts/{quote(key, safe='')}/acknowledge?identifierType=alias"
        return path, {"source": "medops", "note": "acknowledged in medops"}
    tags = sorted({payload.kind, render.severity(payload), *payload.group_labels.values()})
    details = {k: str(v) for k, v in payload.group_labels.items()}
    details["kind"] = payload.kind
    if payload.oncall:
        details["oncall"] = payload.oncall
    return "/v2/alerts", {
        "message": render.title(payload)[:MAX_MESSAGE],
        "alias": key,
        "description": render.plain(payload, links)[:MAX_DESCRIPTION],
        "tags": tags,
        "details": details,
        "entity": payload.group_labels.get("deployment", "medops"),
        "source": "medops",
        "priority": PRIORITY[render.severity(payload)],
    }


class OpsgenieReceiver:
    """Creates, acknowledges and closes Opsgenie alerts."""

    def __init__(self, config: ReceiverConfig, api_key: str) -> None:
        self._base = (config.url or DEFAULT_URL).rstrip("/")
        self._key = api_key

    def send(self, payload: NotificationPayload, links: Links) -> None:
        path, body = request(payload, links)
        headers = {"Authorization": f"GenieKey {self._key}"}
        post_json(self._base + path, canonical_bytes(body), headers)
