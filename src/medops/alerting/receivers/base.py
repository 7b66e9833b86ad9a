"""What every receiver is: ``send(payload, links)``, raising ``DeliveryError`` on failure.

A receiver renders one outbox row's ``NotificationPayload`` to its peer's wire format and
delivers it once; retries, backoff and the single sender across replicas belong to the
dispatcher (``alerting/dispatch.py``), not here. A ``DeliveryError``'s message is stored in the
outbox row and shown to operators, so it says what failed (the peer's status, a refused
connection) and never carries a secret or the payload.
"""

from __future__ import annotations

from typing import Protocol

import httpx

from medops.alerting.links import Links
from medops.alerting.schemas import NotificationPayload, ReceiverConfig
from medops.errors import clip

HTTP_TIMEOUT_SECONDS = 10.0
USER_AGENT = "medops-alerting"


class DeliveryError(Exception):
    """Raised by a receiver when its peer did not take the notification (refused, timed out,
    answered an error). The message is safe to store and show: no secret, no payload."""

    def __init__(self, message: str) -> None:
        super().__init__(clip(message, 500))
        self.message = clip(message, 500)


class Receiver(Protocol):
    """Delivers notifications to one peer."""

    def send(self, payload: NotificationPayload, links: Links) -> None:
        """Deliver ``payload`` once; raise ``DeliveryError`` when the peer did not take it."""
        ...


def post_json(
    url: str,
    body: bytes,
    headers: dict[str, str] | None = None,
    *,
    timeout: float = HTTP_TIMEOUT_SECONDS,
) -> httpx.Response:
    """POST ``body`` (JSON) to ``url``; a 2xx answer is returned, anything else raises
    ``DeliveryError`` naming the status (never the URL's query, which may hold a token)."""
    sent = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **(headers or {})}
    where = _safe_url(url)
    try:
        response = httpx.post(url, content=body, headers=sent, timeout=timeout)
    except httpx.TimeoutException:
        raise DeliveryError(f"{where}: timed out after {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{where}: {type(exc).__name__}") from None
    if not response.is_success:
        raise DeliveryError(f"{where}: answered {response.status_code}")
    return response


def webhook_url(config: ReceiverConfig, secret_url: str | None) -> str:
    """A chat webhook's address: the secret (Slack's and Teams' URLs are credentials) or the
    config's ``url``; ``DeliveryError`` when neither is set."""
    target = secret_url or config.url
    if not target:
        raise DeliveryError(f"receiver {config.name!r} has no webhook URL (secret or url)")
    return target


def _safe_url(url: str) -> str:
    """Scheme, host and port only: a Slack or Teams webhook's path is its secret."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "the receiver's URL"
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}"
