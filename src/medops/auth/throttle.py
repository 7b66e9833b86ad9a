"""Login throttling that an outsider cannot turn into a lockout; pure rules, no I/O.

Three counters, each a ``LoginThrottle`` row under its own key:

* **Per client address** (``address:``): ``address_failures`` failed logins from one address
  within ``address_window`` block that address for ``address_block`` (429 and Retry-After),
  whichever account it tries. IPv6 addresses count per /64, the block a single host is
  usually given. The block never touches an account: the same account logs in from elsewhere.
* **Per account** (``account:`` + SHA-256 of the lower-cased name, so the text typed is never
  stored, and names that do not exist count the same way, so nothing is revealed): after
  ``delay_after`` failures each further attempt waits ``delay_base`` seconds, doubling per
  failure up to ``delay_max``, counted from the last failure, *before it is judged*. Waiting
  is not refusing: a right password with a right one-time code always gets in once the wait is
  over, however many addresses are guessing. Failures are forgotten an hour after the last.
* **Per user, re-authentication** (``reauth:`` + user id): failed re-authentications (password
  change, MFA enrollment, signatures) lock that user's re-authentication for ``lockout_base``,
  doubling up to ``lockout_max``. Only a holder of the user's login can make them, so this
  lock cannot be set off from outside; it stops a stolen token from guessing the password.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

ACCOUNT_MEMORY = timedelta(hours=1)
UNKNOWN_ADDRESS = "unknown"


@dataclass(frozen=True)
class Limits:
    """The throttling numbers of one installation (from the ``MEDOPS_LOGIN_*`` and
    ``MEDOPS_LOCKOUT_*`` settings)."""

    address_failures: int = 20
    address_window: timedelta = timedelta(minutes=10)
    address_block: timedelta = timedelta(minutes=15)
    delay_after: int = 3
    delay_base: float = 1.0
    delay_max: float = 8.0
    lockout_threshold: int = 5
    lockout_base: timedelta = timedelta(minutes=1)
    lockout_max: timedelta = timedelta(hours=1)


@dataclass
class Counter:
    """The state of one key (a ``LoginThrottle`` row's columns)."""

    failures: int = 0
    lockouts: int = 0
    first_failure_at: datetime | None = None
    last_failure_at: datetime | None = None
    blocked_until: datetime | None = None


def address_key(address: str | None) -> str:
    """The key of a client address: IPv4 as it is, IPv6 by its /64 network."""
    if not address:
        return f"address:{UNKNOWN_ADDRESS}"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"address:{address[:100]}"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"address:{ip.ipv4_mapped}"
        return f"address:{ipaddress.IPv6Network((ip, 64), strict=False)}"
    return f"address:{ip}"


def account_key(username: str) -> str:
    """The key of an account name, existing or not: a digest, never the text typed."""
    return "account:" + hashlib.sha256(username.strip().lower().encode()).hexdigest()


def reauth_key(user_id: str) -> str:
    return f"reauth:{user_id}"


def seconds_until(moment: datetime | None, now: datetime) -> int:
    """Whole seconds from ``now`` until ``moment`` (rounded up; 0 once it has passed)."""
    if moment is None or moment <= now:
        return 0
    return max(1, math.ceil((moment - now).total_seconds()))


# --- per address -------------------------------------------------------------------------


def address_blocked(counter: Counter, now: datetime) -> int:
    """Seconds the address stays blocked (0: it may try)."""
    return seconds_until(counter.blocked_until, now)


def address_failed(counter: Counter, now: datetime, limits: Limits) -> bool:
    """Count a failure from the address; True when it blocks the address now."""
    if counter.first_failure_at is None or now - counter.first_failure_at >= limits.address_window:
        counter.failures = 0
        counter.first_failure_at = now
    counter.failures += 1
    counter.last_failure_at = now
    if counter.failures >= limits.address_failures:
        counter.blocked_until = now + limits.address_block
        counter.failures = 0
        counter.first_failure_at = None
        return True
    return False


# --- per account -------------------------------------------------------------------------


def account_delay(failures: int, limits: Limits) -> float:
    """The wait that ``failures`` recent failures put before the next attempt is judged."""
    if failures < limits.delay_after or failures <= 0:
        return 0.0
    return float(min(limits.delay_base * 2 ** (failures - limits.delay_after), limits.delay_max))


def account_wait(counter: Counter, now: datetime, limits: Limits) -> float:
    """Seconds the next attempt on the account waits before it is judged (0: none)."""
    if counter.last_failure_at is None or now - counter.last_failure_at >= ACCOUNT_MEMORY:
        return 0.0
    due = counter.last_failure_at + timedelta(seconds=account_delay(counter.failures, limits))
    return max(0.0, (due - now).total_seconds())


def account_failed(counter: Counter, now: datetime) -> None:
    if counter.last_failure_at is not None and now - counter.last_failure_at >= ACCOUNT_MEMORY:
        counter.failures = 0  # old typos do not add up
    counter.failures += 1
    counter.last_failure_at = now


# --- per user, re-authentication ---------------------------------------------------------


def reauth_locked(counter: Counter, now: datetime) -> int:
    """Seconds the user's re-authentication stays locked (0: it may try)."""
    return seconds_until(counter.blocked_until, now)


def reauth_failed(counter: Counter, now: datetime, limits: Limits) -> int:
    """Count a failed re-authentication; the seconds of the lockout it starts (0: none)."""
    if counter.last_failure_at is not None and now - counter.last_failure_at > limits.lockout_max:
        counter.failures = 0
    counter.failures += 1
    counter.last_failure_at = now
    if counter.failures < limits.lockout_threshold:
        return 0
    counter.lockouts += 1
    seconds = min(
        limits.lockout_base.total_seconds() * 2 ** (counter.lockouts - 1),
        limits.lockout_max.total_seconds(),
    )
    counter.blocked_until = now + timedelta(seconds=seconds)
    counter.failures = 0
    return int(seconds)
