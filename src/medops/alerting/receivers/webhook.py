"""A JSON webhook, signed: ``X-Medops-Signature: t=<unix>,v1=<hex>``, the hex being
HMAC-SHA256 with the receiver's secret over ``<t>.<body>`` (the raw body bytes), as Stripe
signs its webhooks; ``Idempotency-Key`` is the outbox row's id, the same on every retry, so a
receiver that saw a notification can drop its repeat. ``verify_signature`` is what a receiving
team runs (docs/alerting-receivers.md shows it standalone).

The body is medops' own format (``format: medops``: the payload with its links) or
Alertmanager's webhook format (``format: alertmanager``, version 4) for consumers that expect
it; both are signed alike.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any

from medops.alerting.links import Links
from medops.alerting.receivers.alertmanager import webhook_body
from medops.alerting.receivers.base import DeliveryError, post_json
from medops.alerting.schemas import NotificationPayload, ReceiverConfig
from medops.core.canonical import canonical_bytes

SIGNATURE_HEADER = "X-Medops-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
TOLERANCE_SECONDS = 300


def signature(key: bytes, timestamp: int, body: bytes) -> str:
    """The header value signing ``body`` at ``timestamp``."""
    mac = hmac.new(key, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(
    key: bytes, header: str, body: bytes, now: datetime, tolerance: int = TOLERANCE_SECONDS
) -> bool:
    """Whether ``header`` signs ``body`` with ``key`` within ``tolerance`` seconds of ``now``
    (an old signature replayed later is refused)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now.timestamp() - timestamp) > tolerance:
        return False
    expected = signature(key, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


def medops_body(payload: NotificationPayload, links: Links) -> dict[str, Any]:
    """medops' webhook body: the payload, each alert with its links, and the console."""
    body = payload.model_dump(mode="json")
    for alert, out in zip(payload.alerts, body["alerts"], strict=True):
        urls = links.alert(alert.id, alert.evidence)
        out["links"] = {
            "acknowledge": urls.acknowledge,
            "resolve": urls.resolve,
            "evidence": urls.evidence,
        }
    body["version"] = "1"
    body["console_url"] = links.console("/alerts")
    return body


class WebhookReceiver:
    """POSTs the signed JSON body to ``url``."""

    def __init__(self, config: ReceiverConfig, key: str | None) -> None:
        if not config.url:
            raise DeliveryError(f"receiver {config.name!r} has no url")
        self._url = config.url
        self._key = key.encode() if key else None
        self._format = config.format

    def body(self, payload: NotificationPayload, links: Links) -> bytes:
        """The bytes sent (and signed)."""
        if self._format == "alertmanager":
            return canonical_bytes(webhook_body(payload, links))
        return canonical_bytes(medops_body(payload, links))

    def send(self, payload: NotificationPayload, links: Links) -> None:
        body = self.body(payload, links)
        headers = {IDEMPOTENCY_HEADER: links.notification_id or payload.group_key}
        if self._key is not None:
            headers[SIGNATURE_HEADER] = signature(self._key, int(links.now.timestamp()), body)
        post_json(self._url, body, headers)
