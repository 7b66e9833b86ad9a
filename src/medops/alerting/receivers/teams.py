"""Microsoft Teams incoming webhooks, as an Office 365 connector ``MessageCard`` (``@type``,
``@context``, ``summary``, ``themeColor``, ``title``, ``sections`` with ``facts``, and
``OpenUri`` actions to acknowledge and resolve), which Teams' incoming webhooks and Power
Automate's "post to a channel when a webhook request is received" both accept. The webhook URL
is the secret: give it as the receiver's ``secret``."""

from __future__ import annotations

from typing import Any

from medops.alerting.links import Links
from medops.alerting.receivers import render
from medops.alerting.receivers.base import post_json, webhook_url
from medops.alerting.schemas import NotificationPayload, ReceiverConfig
from medops.core.canonical import canonical_bytes

COLOURS = {"critical": "D13438", "warning": "FFB900", "info": "0078D7", "resolved": "2EB886"}


def card(payload: NotificationPayload, links: Links) -> dict[str, Any]:
    """The MessageCard."""
    head = render.title(payload)
    colour = COLOURS["resolved" if payload.status == "resolved" else render.severity(payload)]
    sections = []
    actions: list[dict[str, Any]] = []
    for alert in payload.alerts:
        urls = links.alert(alert.id, alert.evidence)
        facts = [{"name": "severity", "value": alert.severity},
                 {"name": "state", "value": alert.state}]  # fmt: skip
        if alert.value is not None:
            facts.append({"name": "value", "value": render.value_text(alert)})
        facts += [{"name": k, "value": v} for k, v in sorted(alert.labels.items())]
        sections.append(
            {"activityTitle": alert.name, "text": render.summary(alert), "facts": facts}
        )
        if payload.status == "firing":
            actions += [
                {"@type": "OpenUri", "name": f"Acknowledge {alert.name}",
                 "targets": [{"os": "default", "uri": urls.acknowledge}]},
                {"@type": "OpenUri", "name": f"Resolve {alert.name}",
                 "targets": [{"os": "default", "uri": urls.resolve}]},
            ]  # fmt: skip
    actions.append({"@type": "OpenUri", "name": "Open medops",
                    "targets": [{"os": "default", "uri": links.console("/alerts")}]})  # fmt: skip
    return {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": head,
        "themeColor": colour,
        "title": head,
        "sections": sections,
        "potentialAction": actions,
    }


class TeamsReceiver:
    """Posts a MessageCard to a Teams webhook."""

    def __init__(self, config: ReceiverConfig, url: str | None) -> None:
        self._url = webhook_url(config, url)

    def send(self, payload: NotificationPayload, links: Links) -> None:
        post_json(self._url, canonical_bytes(card(payload, links)))
