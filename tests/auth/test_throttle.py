"""The throttling rules, on their own: keys, the account's waits, the address's block."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from medops.auth import throttle

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
LIMITS = throttle.Limits()


def test_addresses_are_keyed_per_ipv4_host_and_per_ipv6_64() -> None:
    """An IPv6 host gets a /64; a v4-mapped address counts as its IPv4 host."""
    assert throttle.address_key("203.0.113.7") == "address:203.0.113.7"
    assert throttle.address_key("2001:db8:1:2:aaaa::1") == throttle.address_key(
        "2001:db8:1:2:bbbb::9"
    )
    assert throttle.address_key("2001:db8:1:2::1") == "address:2001:db8:1:2::/64"
    assert throttle.address_key("::ffff:192.0.2.1") == "address:192.0.2.1"
    assert throttle.address_key(None) == "address:unknown"


def test_account_keys_are_digests_of_the_name_in_any_case() -> None:
    """The name typed is never the key; case and surrounding blanks do not matter."""
    key = throttle.account_key("Correct-Horse-Battery")
    assert key == throttle.account_key(" correct-horse-battery ")
    assert "horse" not in key.lower()
    assert key.startswith("account:")
    assert len(key) == len("account:") + 64


def test_the_account_delay_doubles_after_the_free_failures_up_to_the_cap() -> None:
    """0, 0, 0, then 1, 2, 4, 8, 8 s for 0..7 failures with the defaults."""
    assert [throttle.account_delay(n, LIMITS) for n in range(8)] == [0, 0, 0, 1, 2, 4, 8, 8]


def test_the_account_wait_runs_from_the_last_failure_and_is_forgotten() -> None:
    """Five failures ask 4 s after the last one; an hour later nothing is left."""
    counter = throttle.Counter()
    for _ in range(5):
        throttle.account_failed(counter, NOW)
    assert throttle.account_wait(counter, NOW, LIMITS) == 4
    assert throttle.account_wait(counter, NOW + timedelta(seconds=3), LIMITS) == 1
    assert throttle.account_wait(counter, NOW + timedelta(hours=1), LIMITS) == 0
    throttle.account_failed(counter, NOW + timedelta(hours=1))
    assert counter.failures == 1


def test_an_address_is_blocked_at_the_limit_within_its_window_only() -> None:
    """The window starts at the first failure: 20 spread over more than it never block;
    twenty inside it do."""
    spread = throttle.Counter()
    for n in range(40):
        blocked = throttle.address_failed(spread, NOW + n * timedelta(seconds=32), LIMITS)
        assert not blocked
    bursty = throttle.Counter()
    results = [throttle.address_failed(bursty, NOW, LIMITS) for _ in range(20)]
    assert results == [False] * 19 + [True]
    assert throttle.address_blocked(bursty, NOW) == 900
    assert throttle.address_blocked(bursty, NOW + timedelta(seconds=900)) == 0


def test_reauthentication_locks_double_up_to_the_maximum() -> None:
    """60 s, 120 s, 240 s ... 3600 s, each after five failures in a row."""
    counter = throttle.Counter()
    locks = []
    moment = NOW
    for _ in range(8):
        lock = 0
        for _ in range(5):
            lock = throttle.reauth_failed(counter, moment, LIMITS)
        locks.append(lock)
        moment += timedelta(seconds=lock)
    assert locks == [60, 120, 240, 480, 960, 1920, 3600, 3600]
