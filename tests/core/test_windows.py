"""Monitoring windows: aligned to UTC hours, days and ISO weeks; complete windows only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from medops.core.windows import complete_windows, count_windows, floor
from medops.errors import InvalidInputError


def test_time_windows_are_aligned_to_utc_boundaries() -> None:
    """An hour starts at :00, a day at 00:00 UTC, a week on Monday 00:00 UTC, whatever the
    moment's own offset."""
    moment = datetime(2026, 11, 27, 1, 30, tzinfo=timezone(timedelta(hours=2)))  # Thu 23:30 UTC
    assert floor(moment, "hour") == datetime(2026, 11, 26, 23, tzinfo=UTC)
    assert floor(moment, "day") == datetime(2026, 11, 26, tzinfo=UTC)
    assert floor(moment, "week") == datetime(2026, 11, 23, tzinfo=UTC)  # a Monday


def test_only_complete_windows_are_listed_and_resumed_after_the_last_done() -> None:
    """Windows end at or before now; ``after`` skips those already computed."""
    first = datetime(2026, 11, 1, 10, 15, tzinfo=UTC)
    now = datetime(2026, 11, 4, 9, 0, tzinfo=UTC)
    days = complete_windows(first, now, "day")
    assert days == [
        (datetime(2026, 11, d, tzinfo=UTC), datetime(2026, 11, d + 1, tzinfo=UTC))
        for d in (1, 2, 3)
    ]
    assert complete_windows(first, now, "day", after=days[1][1]) == days[2:]
    assert complete_windows(first, first + timedelta(minutes=30), "hour") == []


def test_count_windows_hold_size_rows_and_the_partial_one_waits() -> None:
    """25 rows in windows of 10: two complete windows; resuming after one gives the second."""
    assert count_windows(25, 10) == [(0, 10), (10, 20)]
    assert count_windows(25, 10, done=1) == [(10, 20)]
    assert count_windows(5, 10) == []


def test_bad_windows_are_refused_clearly() -> None:
    """An unknown kind, a naive time or an empty count window is an InvalidInputError."""
    with pytest.raises(InvalidInputError, match="unknown window"):
        floor(datetime(2026, 1, 1, tzinfo=UTC), "month")
    with pytest.raises(InvalidInputError, match="timezone"):
        floor(datetime(2026, 1, 1), "day")
    with pytest.raises(InvalidInputError, match="at least one row"):
        count_windows(10, 0)


def test_sequence_numbers_time_windows_from_the_epoch() -> None:
    """Whole windows since 1970-01-01 (weeks: since Monday 1970-01-05); any moment inside a
    window gives its number; consecutive windows are consecutive numbers."""
    from medops.core.windows import length_of, sequence_of

    assert sequence_of(datetime(1970, 1, 1, tzinfo=UTC), "day") == 0
    assert sequence_of(datetime(1970, 1, 5, tzinfo=UTC), "week") == 0
    assert sequence_of(datetime(1970, 1, 11, 23, tzinfo=UTC), "week") == 0
    assert sequence_of(datetime(1970, 1, 12, tzinfo=UTC), "week") == 1
    moment = datetime(2026, 11, 28, 4, 30, tzinfo=UTC)
    seconds = int((moment - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds())
    assert sequence_of(moment, "hour") == seconds // 3600
    assert sequence_of(moment, "day") == seconds // 86400
    for kind in ("hour", "day", "week"):
        here = sequence_of(moment, kind)
        assert sequence_of(moment + length_of(kind), kind) == here + 1
        assert sequence_of(moment - length_of(kind), kind) == here - 1


def test_count_kinds_are_parsed_and_bad_ones_refused() -> None:
    """count:N gives N (10 to 10,000,000); time kinds give None; anything else is a clear
    error naming the accepted forms."""
    from medops.core.windows import count_size

    assert count_size("count:500") == 500
    assert count_size("day") is None
    with pytest.raises(InvalidInputError, match="10 to 10,000,000"):
        count_size("count:5")
    for bad in ("count:", "count:x", "count:-5", "month", "count:\u0663\u0663"):
        with pytest.raises(InvalidInputError, match="unknown window"):
            count_size(bad)
