"""Receivers: where notifications go, one small class per kind behind one interface
(``base.Receiver``), built from a ``ReceiverConfig`` and its secret by ``build``."""

from __future__ import annotations

from medops.alerting.receivers.alertmanager import AlertmanagerReceiver
from medops.alerting.receivers.base import DeliveryError, Receiver
from medops.alerting.receivers.email import EmailReceiver
from medops.alerting.receivers.opsgenie import OpsgenieReceiver
from medops.alerting.receivers.pagerduty import PagerDutyReceiver
from medops.alerting.receivers.secrets import Secrets
from medops.alerting.receivers.slack import SlackReceiver
from medops.alerting.receivers.teams import TeamsReceiver
from medops.alerting.receivers.webhook import WebhookReceiver
from medops.alerting.schemas import ReceiverConfig

__all__ = ["DeliveryError", "Receiver", "Secrets", "build"]


def build(config: ReceiverConfig, secrets: Secrets) -> Receiver:
    """The receiver ``config`` describes; ``DeliveryError`` when it cannot be built (a
    missing URL or secret), which the dispatcher records as a failed attempt."""
    secret = secrets.get(config.secret) if config.secret else None
    if config.kind == "webhook":
        return WebhookReceiver(config, secret)
    if config.kind == "alertmanager":
        return AlertmanagerReceiver(config)
    if config.kind == "pagerduty":
        if secret is None:
            raise DeliveryError(f"receiver {config.name!r} needs a secret (the routing key)")
        return PagerDutyReceiver(config, secret)
    if config.kind == "opsgenie":
        if secret is None:
            raise DeliveryError(f"receiver {config.name!r} needs a secret (the API key)")
        return OpsgenieReceiver(config, secret)
    if config.kind == "slack":
        return SlackReceiver(config, secret)
    if config.kind == "teams":
        return TeamsReceiver(config, secret)
    return EmailReceiver(config, secret)
