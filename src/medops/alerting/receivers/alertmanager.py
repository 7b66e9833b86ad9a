"""Alertmanager, both ways round.

``webhook_body`` renders a notification in Alertmanager's webhook format (version "4": what
Alertmanager itself POSTs to a ``webhook_config``), for consumers written against it; the
webhook receiver sends it when its ``format`` is ``alertmanager``.

``AlertmanagerReceiver`` pushes the group's alerts to a real Alertmanager's
``POST /api/v2/alerts`` (``url``: its base address), so a hospital that already routes with
Alertmanager keeps doing so: labels as they are (``alertname`` among them), annotations plus
the signed acknowledge/resolve links, ``startsAt``, and ``endsAt`` once resolved (left out
while firing: Alertmanager then resolves it after its ``resolve_timeout`` unless pushed
again, which repeat notifications do).
"""

from __future__ import annotations

from typing import Any

from medops.alerting.links import Links
from medops.alerting.receivers.base import DeliveryError, post_json
from medops.alerting.schemas import NotificationAlert, NotificationPayload, ReceiverConfig
from medops.core.canonical import canonical_bytes, utc_text

ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's "unset" endsAt in webhook bodies
API_PATH = "/api/v2/alerts"


def _labels(alert: NotificationAlert) -> dict[str, str]:
    return {**alert.labels, "alertname": alert.labels.get("alertname", alert.name)}


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    common = dict(maps[0])
    for other in maps[1:]:
        common = {k: v for k, v in common.items() if other.get(k) == v}
    return common


def _generator(links: Links, alert: NotificationAlert) -> str:
    return links.console(alert.evidence or f"/alerts/{alert.id}")


def webhook_body(payload: NotificationPayload, links: Links) -> dict[str, Any]:
    """The notification as Alertmanager's webhook payload (version 4)."""
    alerts: list[dict[str, Any]] = []
    for alert in payload.alerts:
        resolved = alert.state == "resolved" or payload.status == "resolved"
        alerts.append(
            {
                "status": "resolved" if resolved else "firing",
                "labels": _labels(alert),
                "annotations": dict(alert.annotations),
                "startsAt": utc_text(alert.starts_at),
                "endsAt": utc_text(alert.ends_at) if alert.ends_at else ZERO_TIME,
                "generatorURL": _generator(links, alert),
                "fingerprint": alert.fingerprint[:16],
            }
        )
    return {
        "version": "4",
        "groupKey": payload.group_key,
        "truncatedAlerts": 0,
        "status": payload.status,
        "receiver": payload.receiver,
        "groupLabels": dict(payload.group_labels),
        "commonLabels": _common([_labels(a) for a in payload.alerts]),
        "commonAnnotations": _common([dict(a.annotations) for a in payload.alerts]),
        "externalURL": links.console("/alerts"),
        "alerts": alerts,
    }


def pushed_alerts(payload: NotificationPayload, links: Links) -> list[dict[str, Any]]:
    """The body of ``POST /api/v2/alerts`` for the payload's alerts."""
    pushed = []
    for alert in payload.alerts:
        annotations = dict(alert.annotations)
        resolved = alert.state == "resolved" or payload.status == "resolved"
        if not resolved:
            urls = links.alert(alert.id, alert.evidence)
            annotations["medops_acknowledge"] = urls.acknowledge
            annotations["medops_resolve"] = urls.resolve
        item: dict[str, Any] = {
            "labels": _labels(alert),
            "annotations": annotations,
            "startsAt": utc_text(alert.starts_at),
            "generatorURL": _generator(links, alert),
        }
        if resolved:
            item["endsAt"] = utc_text(alert.ends_at or links.now)
        pushed.append(item)
    return pushed


class AlertmanagerReceiver:
    """Pushes alerts to an Alertmanager at ``url``."""

    def __init__(self, config: ReceiverConfig) -> None:
        if not config.url:
            raise DeliveryError(f"receiver {config.name!r} has no url")
        base = config.url.rstrip("/")
        self._url = base if base.endswith(API_PATH) else base + API_PATH

    def send(self, payload: NotificationPayload, links: Links) -> None:
        post_json(self._url, canonical_bytes(pushed_alerts(payload, links)))
