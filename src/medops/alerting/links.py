"""Signed acknowledge and resolve links, and the console addresses notifications carry.

A link is ``<MEDOPS_PUBLIC_URL>/alerts/act?token=<token>``. The token is
``v1.<claims>.<mac>``: the claims (alert id, action, optionally the user it was made for, and
an expiry as a Unix time) in base64url JSON, and HMAC-SHA256 over ``v1.<claims>`` with the
installation's link key (``MEDOPS_ALERT_LINK_KEY``, or the key file ``alert-links.key`` made in
the home on first use, as the audit key is). Nobody can forge or widen a link without the key:
a changed alert, action, user or expiry breaks the MAC.

A link is not a credential. Opening it shows a page that asks the person to confirm while
signed in (so a mail scanner that follows links acknowledges nothing), and the action runs as
that person, with ``alerts:respond``, audited as any acknowledgement; a link made for a user
is refused to anyone else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from medops.config import Settings
from medops.errors import FieldError, InvalidInputError
from medops.files import create_private

Action = Literal["acknowledge", "resolve"]
ACTIONS: tuple[Action, ...] = ("acknowledge", "resolve")
VERSION = "v1"
MIN_KEY_BYTES = 32
ACT_PATH = "/alerts/act"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class LinkClaim:
    """What a verified token allows: ``action`` on ``alert_id`` until ``expires``, by
    ``user`` when it names one (else by anyone who may respond to alerts)."""

    alert_id: str
    action: Action
    expires: datetime
    user: str | None = None


def sign(key: bytes, claim: LinkClaim) -> str:
    """The token for ``claim``."""
    body = {"a": claim.alert_id, "x": claim.action, "e": int(claim.expires.timestamp())}
    if claim.user is not None:
        body["u"] = claim.user
    encoded = _b64(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
    mac = hmac.new(key, f"{VERSION}.{encoded}".encode(), hashlib.sha256).digest()
    return f"{VERSION}.{encoded}.{_b64(mac)}"


def _refuse(reason: str) -> InvalidInputError:
    return InvalidInputError(
        f"the link is not valid: {reason}", errors=[FieldError("token", reason)]
    )


def verify(key: bytes, token: str, now: datetime) -> LinkClaim:
    """The claim ``token`` carries; ``InvalidInputError`` (field ``token``) when it is
    malformed, was not signed with ``key``, or has expired."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != VERSION:
        raise _refuse("malformed token")
    try:
        mac = _unb64(parts[2])
        claims = json.loads(_unb64(parts[1]))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise _refuse("malformed token") from None
    expected = hmac.new(key, f"{VERSION}.{parts[1]}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(mac, expected):
        raise _refuse("bad signature")
    try:
        alert_id, action, expiry = str(claims["a"]), claims["x"], int(claims["e"])
        user = None if claims.get("u") is None else str(claims["u"])
    except (KeyError, TypeError, ValueError):
        raise _refuse("malformed token") from None
    if action not in ACTIONS:
        raise _refuse("unknown action")
    expires = datetime.fromtimestamp(expiry, UTC)
    if now >= expires:
        raise _refuse("expired")
    return LinkClaim(alert_id=alert_id, action=action, expires=expires, user=user)


def load_key(settings: Settings) -> bytes:
    """The link key: ``MEDOPS_ALERT_LINK_KEY``, or the key file (made, 0600, when absent;
    two processes making it at once agree on the first one written)."""
    if settings.alert_link_key is not None:
        value = settings.alert_link_key.get_secret_value().encode()
        if len(value) < MIN_KEY_BYTES:
            msg = f"MEDOPS_ALERT_LINK_KEY must be at least {MIN_KEY_BYTES} characters"
            raise InvalidInputError(msg, errors=[FieldError("alert_link_key", msg)])
        return value
    return _key_file(settings.alert_link_key_file)


def _key_file(path: Path) -> bytes:
    if path.exists():
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}.tmp")
    key = secrets.token_bytes(32)
    fd = create_private(tmp)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key.hex() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(tmp, path)  # atomic, and never replaces a key another process made first
    except FileExistsError:
        return _key_file(path)
    finally:
        tmp.unlink()
    return key


@dataclass(frozen=True)
class AlertLinks:
    """One alert's addresses in a notification."""

    acknowledge: str
    resolve: str
    evidence: str | None


@dataclass(frozen=True)
class Links:
    """The addresses one notification carries, made when it is sent: the console, each
    alert's evidence, and signed acknowledge/resolve links valid for ``ttl``. Also the send's
    time and the outbox row's id (a webhook's signature timestamp and Idempotency-Key)."""

    base_url: str
    key: bytes
    now: datetime
    ttl: timedelta = timedelta(hours=72)
    notification_id: str = ""

    @classmethod
    def for_settings(
        cls, settings: Settings, key: bytes, now: datetime, notification_id: str = ""
    ) -> Links:
        """Links under ``MEDOPS_PUBLIC_URL`` (``http://localhost:8000`` when unset)."""
        return cls(
            base_url=settings.public_url or "http://localhost:8000",
            key=key,
            now=now,
            ttl=timedelta(hours=settings.alert_link_hours),
            notification_id=notification_id,
        )

    def console(self, path: str = "/") -> str:
        """The console address of ``path`` (a path such as ``/deployments/diabetes``)."""
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")

    def act(self, alert_id: str, action: Action, user: str | None = None) -> str:
        """A signed link to ``action`` the alert."""
        claim = LinkClaim(alert_id, action, self.now + self.ttl, user)
        return self.console(ACT_PATH) + "?token=" + quote(sign(self.key, claim), safe="")

    def alert(self, alert_id: str, evidence: str | None) -> AlertLinks:
        """Acknowledge, resolve and evidence addresses of one alert."""
        return AlertLinks(
            acknowledge=self.act(alert_id, "acknowledge"),
            resolve=self.act(alert_id, "resolve"),
            evidence=self.console(evidence) if evidence else None,
        )
