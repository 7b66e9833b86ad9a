"""Bearer token secrets: random, shown once, stored only as their SHA-256."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "mdo_"  # noqa: S105 - a public prefix, not a secret  # nosec B105


def new_token_id() -> str:
    """A short public identifier, safe to log and to show in lists."""
    return "tok_" + secrets.token_hex(8)


def new_secret() -> str:
    """A 256-bit random bearer token."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """The stored form of a token: hex SHA-256 (the secret has 256 bits, so no salt is needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()
