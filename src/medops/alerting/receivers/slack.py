"""Slack incoming webhooks: ``text`` (the fallback Slack requires, shown in notifications)
and Block Kit ``blocks``: a header, a section per alert in mrkdwn, and link buttons to
acknowledge and resolve (a button with a ``url`` opens it; Slack then posts an interaction,
which medops does not need). A Slack webhook URL is itself the secret: give it as the
receiver's ``secret`` rather than its ``url``."""

from __future__ import annotations

from typing import Any

from medops.alerting.links import Links
from medops.alerting.receivers import render
from medops.alerting.receivers.base import post_json, webhook_url
from medops.alerting.schemas import NotificationPayload, ReceiverConfig
from medops.core.canonical import canonical_bytes

MAX_HEADER = 150
MAX_SECTION = 3000
MAX_BLOCKS = 50


def message(payload: NotificationPayload, links: Links) -> dict[str, Any]:
    """The webhook body."""
    head = render.title(payload)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": head[:MAX_HEADER]}}
    ]
    for alert in payload.alerts[: (MAX_BLOCKS - 2) // 2]:
        urls = links.alert(alert.id, alert.evidence)
        text = f"*{alert.name}* · {alert.severity} · {alert.state}\n{render.summary(alert)}"
        if alert.value is not None:
            text += f"\nvalue: `{render.value_text(alert)}`"
        if urls.evidence:
            text += f"\n<{urls.evidence}|evidence>"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:MAX_SECTION]}})
        if payload.status == "firing":
            blocks.append({"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Acknowledge"},
                 "url": urls.acknowledge, "style": "primary"},
                {"type": "button", "text": {"type": "plain_text", "text": "Resolve"},
                 "url": urls.resolve},
            ]})  # fmt: skip
    return {"text": head, "blocks": blocks}


class SlackReceiver:
    """Posts to a Slack incoming webhook."""

    def __init__(self, config: ReceiverConfig, url: str | None) -> None:
        self._url = webhook_url(config, url)

    def send(self, payload: NotificationPayload, links: Links) -> None:
        post_json(self._url, canonical_bytes(message(payload, links)))
