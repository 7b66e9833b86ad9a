"""Time-based one-time passwords (RFC 6238) and recovery codes; pure functions, no I/O.

Codes are 6 digits over 30-second steps; one step of clock drift either way is accepted, and
a step once used is never accepted again (replay protection: the caller stores the last step).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

import pyotp
import segno

ISSUER = "medops"
RECOVERY_CODES = 10
DRIFT_STEPS = 1


@dataclass(frozen=True)
class Enrollment:
    """What a user needs to add medops to an authenticator app."""

    secret: str
    otpauth_uri: str
    qr_png_data_uri: str


def new_enrollment(username: str) -> Enrollment:
    secret = pyotp.random_base32()
    uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)
    qr = segno.make(uri, error="m")
    return Enrollment(secret=secret, otpauth_uri=uri, qr_png_data_uri=qr.png_data_uri(scale=4))


def terminal_qr(uri: str) -> str:
    """The otpauth URI as a QR code drawn with block characters, for the CLI."""
    import io

    out = io.StringIO()
    segno.make(uri, error="m").terminal(out=out, compact=True)
    return out.getvalue()


# pyotp's default TOTP period (RFC 6238), which every authenticator app uses.
STEP_SECONDS = 30


def verify_totp(secret: str, code: str, now: datetime, last_step: int | None) -> int | None:
    """The time step the code belongs to, or None when it is wrong, expired or replayed."""
    code = code.strip().replace(" ", "")
    if not (code.isascii() and code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def seconds_to_step(step: int, now: datetime) -> int:
    """Whole seconds (at least 1) until TOTP time step ``step`` begins."""
    return max(1, int(step * STEP_SECONDS - now.timestamp()) + 1)


def new_recovery_codes() -> list[str]:
    """Ten codes like ``7kq4-m2xp-9dwa`` (60 bits each), shown once."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return [
        "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(3))
        for _ in range(RECOVERY_CODES)
    ]


def recovery_digest(code: str) -> str:
    """Stored form of a recovery code: SHA-256 of its normalised text."""
    normalised = code.strip().lower().replace("-", "").replace(" ", "")
    return hashlib.sha256(normalised.encode()).hexdigest()


def looks_like_recovery_code(code: str) -> bool:
    return len(code.strip().replace("-", "").replace(" ", "")) == 12
