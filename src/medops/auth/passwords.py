"""Password hashing with argon2id and the password policy."""

from __future__ import annotations

import functools

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from medops.errors import FieldError, InvalidInputError

MIN_LENGTH = 12
MAX_LENGTH = 256


class PasswordHashing:
    """argon2id at given costs: hashes new passwords and verifies any argon2 hash (a hash
    carries its own costs, so hashes made at other costs still verify)."""

    def __init__(self, *, time_cost: int, memory_kib: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=1, type=Type.ID
        )

    def hash(self, password: str) -> str:
        """An argon2id hash of the password, with its own random salt."""
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """True when the password matches; always spends the time of one verification."""
        try:
            return (
                self._hasher.verify(password_hash or self._dummy_hash, password)
                and password_hash is not None
            )
        except (VerificationError, InvalidHashError):
            return False

    @functools.cached_property
    def _dummy_hash(self) -> str:
        """Verified against when the user does not exist, so both paths cost the same time."""
        return self._hasher.hash("medops-timing-equaliser")


# OWASP's argon2id minimum (19 MiB, 2 passes, 1 lane): strong, yet ~20 ms on a small server.
# Every installation uses it; only a test suite passes another to build_services (see
# medops.testing.FAST_PASSWORD_HASHING).
OWASP_HASHING = PasswordHashing(time_cost=2, memory_kib=19 * 1024)


# Long passwords that still top breach lists, plus this product's own obvious choices. The
# length rule does most of the work (NIST SP 800-63B); this list catches the usual suspects.
COMMON_PASSWORDS = frozenset(
    [
        "123456789012",
        "1234567890123",
        "12345678901234",
        "123456789123",
        "111111111111",
        "000000000000",
        "123123123123",
        "112233445566",
        "987654321098",
        "147258369147",
        "1q2w3e4r5t6y",
        "1qaz2wsx3edc",
        "qwertyuiopas",
        "qwertyuiop12",
        "qwerty123456",
        "qwertyqwerty",
        "asdfghjkl123",
        "zxcvbnm12345",
        "password1234",
        "password12345",
        "password123!",
        "passw0rd1234",
        "p@ssw0rd1234",
        "p@ssword1234",
        "passwordpassword",
        "mypassword123",
        "password2024",
        "password2025",
        "password2026",
        "password0000",
        "iloveyou1234",
        "letmein12345",
        "welcome12345",
        "welcome2024!",
        "welcome2025!",
        "welcome2026!",
        "changeme1234",
        "changeme123!",
        "administrator",
        "admin1234567",
        "adminadmin123",
        "administrator1",
        "abc123456789",
        "abcdefghijkl",
        "abcd12345678",
        "aaaaaaaaaaaa",
        "football1234",
        "baseball1234",
        "sunshine1234",
        "princess1234",
        "dragon123456",
        "monkey123456",
        "superman1234",
        "trustno1trustno1",
        "hospital1234",
        "hospital2024",
        "hospital2025",
        "hospital2026",
        "medops123456",
        "medopsmedops",
        "clinician123",
        "doctor123456",
        "nurse1234567",
        "patient12345",
        "healthcare123",
        "summer2024!!",
    ]
)


def check_policy(password: str, *, field: str = "password", username: str | None = None) -> None:
    """Refuse a password that breaks the policy, naming the rule it breaks."""
    lowered = password.lower()
    if len(password) < MIN_LENGTH:
        reason = f"must be at least {MIN_LENGTH} characters"
    elif len(password) > MAX_LENGTH:
        reason = f"must be at most {MAX_LENGTH} characters"
    elif lowered in COMMON_PASSWORDS or len(set(password)) <= 2:
        reason = "is too common; choose a passphrase of several unrelated words"
    elif username and username.lower() in lowered:
        reason = "must not contain the username"
    else:
        return
    raise InvalidInputError(f"{field} {reason}", errors=[FieldError(field, reason)])


def hash_password(password: str) -> str:
    """An argon2id hash of the password at OWASP's costs, with its own random salt."""
    return OWASP_HASHING.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when the password matches; always spends the time of one verification."""
    return OWASP_HASHING.verify(password_hash, password)
