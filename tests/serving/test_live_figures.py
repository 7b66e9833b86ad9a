"""The live figures of one arm (records, errors, latency percentiles, records per second) as
the overview and GET /api/v1/deployments/{name} report them."""

from __future__ import annotations

import time

import pytest

from medops.serving.runtime import RATE_BUCKET_SECONDS, RATE_BUCKETS, ArmWindow


def test_an_arms_figures_count_errors_and_rank_latencies() -> None:
    """Ten records, one failed, latencies 1..10 ms: error rate 0.1, p50 5 ms, p99 10 ms."""
    window = ArmWindow(size=100)
    for latency in range(1, 11):
        window.add(latency != 3, float(latency))
    stats = window.stats()
    assert (stats.records, stats.errors) == (10, 1)
    assert stats.error_rate == pytest.approx(0.1)
    assert (stats.p50_ms, stats.p99_ms) == (5.0, 10.0)


def test_the_rate_is_records_over_the_last_five_minutes() -> None:
    """60 records just now: 60 over five minutes and the seconds of the filling bucket."""
    window = ArmWindow(size=10)
    window.add(True, 1.0, count=60)
    rate = window.stats().rate_per_second
    assert rate is not None
    span = (RATE_BUCKETS - 1) * RATE_BUCKET_SECONDS
    assert 60 / (span + RATE_BUCKET_SECONDS) <= rate <= 60 / span


def test_records_older_than_five_minutes_no_longer_count() -> None:
    """A bucket from six minutes ago is left out of the rate."""
    window = ArmWindow(size=10)
    old = int(time.monotonic()) // RATE_BUCKET_SECONDS - RATE_BUCKETS - 5
    window.buckets.append([old, 1000])
    window.add(True, 1.0)
    rate = window.stats().rate_per_second
    assert rate is not None
    assert rate < 2 / ((RATE_BUCKETS - 1) * RATE_BUCKET_SECONDS)
