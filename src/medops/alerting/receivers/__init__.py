"""Receivers: where notifications go, one small class per kind behind one interface
(``base.Receiver``), built from a ``ReceiverConfig`` and its secret by ``build``."""

from __future__ import annotations

from collections.abc import Callable

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
    if config.kind in {"pagerduty", "opsgenie"} and secret is None:
        what = "the routing key" if config.kind == "pagerduty" else "the API key"
        raise DeliveryError(f"receiver {config.name!r} needs a secret ({what})")
    builders: dict[str, Callable[[], Receiver]] = {
        "webhook": lambda: WebhookReceiver(config, secret),
        "alertmanager": lambda: AlertmanagerReceiver(config),
        "pagerduty": lambda: PagerDutyReceiver(config, secret or ""),
        "opsgenie": lambda: OpsgenieReceiver(config, secret or ""),
        "slack": lambda: SlackReceiver(config, secret),
        "teams": lambda: TeamsReceiver(config, secret),
        "email": lambda: EmailReceiver(config, secret),
    }
    return builders[config.kind]()
