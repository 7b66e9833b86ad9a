"""Password hashing with argon2id and the password policy."""

from __future__ import annotations

import functools

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from medops.errors import FieldError, InvalidInputError

MIN_LENGTH = 12
MAX_LENGTH = 256

# OWASP's argon2id minimum (19 MiB, 2 passes, 1 lane): strong, yet ~20 ms on a small server.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID)


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so both paths cost the same time."""
    return _HASHER.hash("medops-timing-equaliser")


def check_policy(password: str, *, field: str = "password") -> None:
    """Refuse a password that breaks the policy, naming the rule it breaks."""
    if len(password) < MIN_LENGTH:
        reason = f"must be at least {MIN_LENGTH} characters"
    elif len(password) > MAX_LENGTH:
        reason = f"must be at most {MAX_LENGTH} characters"
    else:
        return
    raise InvalidInputError(f"{field} {reason}", errors=[FieldError(field, reason)])


def hash_password(password: str) -> str:
    """An argon2id hash of the password, with its own random salt."""
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when the password matches; always spends the time of one verification."""
    try:
        return (
            _HASHER.verify(password_hash or _dummy_hash(), password) and password_hash is not None
        )
    except (VerificationError, InvalidHashError):
        return False
