"""Receivers' secrets, by name: the ``MEDOPS_ALERT_SECRET_<NAME>`` environment variable, or
the file ``<home>/secrets/<name>``.

A ``ReceiverConfig`` names its secret (``secret: ops-hook``) and never holds it, so routing
documents can be stored, diffed and audited without leaking an HMAC key, a PagerDuty routing
key, an Opsgenie API key, an SMTP password or a Slack/Teams webhook URL. The variable's name
is the secret's name upper-cased with every character outside A-Z and 0-9 made ``_``
(``ops-hook`` → ``MEDOPS_ALERT_SECRET_OPS_HOOK``); the file holds the secret alone (a final
newline is ignored), kept 0600 by whoever puts it there (a Kubernetes secret mount works).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from medops.alerting.receivers.base import DeliveryError

ENV_PREFIX = "MEDOPS_ALERT_SECRET_"


def env_name(name: str) -> str:
    """The environment variable holding the secret ``name``."""
    return ENV_PREFIX + re.sub(r"[^A-Z0-9]", "_", name.upper())


class Secrets:
    """Looks secrets up in the environment, then in ``folder``."""

    def __init__(self, folder: Path, environ: Mapping[str, str] | None = None) -> None:
        self._folder = folder
        self._environ = os.environ if environ is None else environ

    def get(self, name: str) -> str:
        """The secret ``name``; ``DeliveryError`` (naming where it was looked for) when unset."""
        value = self._environ.get(env_name(name))
        if value:
            return value
        if re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,63}", name):
            path = self._folder / name
            if path.is_file():
                text = path.read_text(encoding="utf-8").rstrip("\r\n")
                if text:
                    return text
        raise DeliveryError(
            f"secret {name!r} is not set: set {env_name(name)} or write {self._folder / name}"
        )
