"""Keyed replacements: new UIDs, patient pseudonyms and per-patient date shifts.

Every value is an HMAC-SHA-256 of the original under the project's secret, so the same input
gets the same replacement in every file and every add of a project (a study keeps one new
Study Instance UID across its files and across versions), nobody without the secret can
compute or reverse one, and two projects never share pseudonyms. A new UID is
``2.25.<decimal>`` (PS3.5 B.2): the 128-bit integer of a version-8 UUID whose bits are the
HMAC's first 16 bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

_UID_LABEL = b"medops-deid/uid\x00"
_PATIENT_LABEL = b"medops-deid/patient\x00"
_SHIFT_LABEL = b"medops-deid/date-shift\x00"
PSEUDONYM_PREFIX = "PT-"


def _mac(secret: bytes, label: bytes, value: str) -> bytes:
    return hmac.new(secret, label + value.encode("utf-8"), hashlib.sha256).digest()


def new_uid(secret: bytes, original: str) -> str:
    """The replacement of UID ``original``: ``2.25.`` and a UUID's integer (at most 44
    characters, within a UID's 64)."""
    digest = bytearray(_mac(secret, _UID_LABEL, original.strip().rstrip("\x00"))[:16])
    digest[6] = (digest[6] & 0x0F) | 0x80  # version 8: custom
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 9562 variant
    return f"2.25.{uuid.UUID(bytes=bytes(digest)).int}"


def patient_pseudonym(secret: bytes, patient_key: str) -> str:
    """The pseudonym of a patient (``PT-`` and 20 base32 characters, 100 bits)."""
    digest = _mac(secret, _PATIENT_LABEL, patient_key)
    return PSEUDONYM_PREFIX + base64.b32encode(digest[:15]).decode("ascii")[:20]


def date_shift_days(secret: bytes, patient_key: str, maximum: int) -> int:
    """How many days (1..``maximum``) this patient's dates move back."""
    digest = _mac(secret, _SHIFT_LABEL, patient_key)
    return 1 + int.from_bytes(digest[:8], "big") % maximum
