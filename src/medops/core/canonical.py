"""Canonical JSON: the one serialization every medops hash and signature is taken over. Pure.

Keys sorted, no spaces, UTF-8 text as it is (``ensure_ascii=False``); times as UTC with
microseconds and a ``Z``. Audit checkpoints were first signed over the ASCII-escaped form, so
``ascii_only=True`` keeps their bytes (and so every signature already made) unchanged.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

__all__ = ["canonical_bytes", "canonical_json", "sha256_json", "utc_text"]


def canonical_json(value: Any, *, ascii_only: bool = False) -> str:
    """Sorted keys, no spaces, UTF-8 safe: the form every medops hash is taken over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=ascii_only)


def canonical_bytes(value: Any, *, ascii_only: bool = False) -> bytes:
    """``canonical_json(value)`` encoded as UTF-8."""
    return canonical_json(value, ascii_only=ascii_only).encode()


def sha256_json(value: Any) -> str:
    """SHA-256 hex of ``canonical_json(value)``."""
    return hashlib.sha256(canonical_bytes(value)).hexdigest()


def utc_text(value: datetime) -> str:
    """A timezone-aware time as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC; naive times refused."""
    if value.tzinfo is None:
        msg = "times must be timezone-aware"
        raise ValueError(msg)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
