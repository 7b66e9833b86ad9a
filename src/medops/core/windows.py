"""Monitoring windows over the prediction log: by time (hour, day, week, in UTC) or by count.

A window is ``[start, end)``. Only complete windows are computed (a window still filling would
raise alarms that the next rows cancel); time windows are aligned to the UTC hour, day and ISO
week (Monday 00:00), so every replica and every run cuts the log at the same places. Count
windows (kind ``count:N``) hold ``N`` consecutive predictions in log order (time, then id);
the last, partial one waits.

Each window has a ``sequence``, its place in its series: for time windows the number of whole
windows between the Unix epoch (for weeks: Monday 1970-01-05) and its start, for count windows
its index (the window of log rows ``[i * N, (i + 1) * N)`` is number ``i``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

from medops.errors import InvalidInputError

TimeWindow = Literal["hour", "day", "week"]
TIME_WINDOWS: tuple[str, ...] = get_args(TimeWindow)
_LENGTH = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}
MAX_WINDOWS = 10_000  # per run and series: a bound, so a mistaken clock cannot loop for ever
COUNT_PREFIX = "count:"
MIN_COUNT = 10
MAX_COUNT = 10_000_000
WINDOW_PATTERN = r"^(hour|day|week|count:[1-9][0-9]{1,7})$"
WINDOW_HELP = "hour, day or week (UTC), or count:N for windows of N consecutive predictions"
_EPOCH = {
    "hour": datetime(1970, 1, 1, tzinfo=UTC),
    "day": datetime(1970, 1, 1, tzinfo=UTC),
    "week": datetime(1970, 1, 5, tzinfo=UTC),  # a Monday
}


def count_size(window: str) -> int | None:
    """N of a ``count:N`` window kind; None for a time window; an error for anything else."""
    if window in TIME_WINDOWS:
        return None
    digits = window.removeprefix(COUNT_PREFIX)
    if window.startswith(COUNT_PREFIX) and digits.isdigit() and digits.isascii():
        size = int(digits)
        if MIN_COUNT <= size <= MAX_COUNT:
            return size
        msg = f"a count window holds {MIN_COUNT} to {MAX_COUNT:,} predictions, not {size:,}"
        raise InvalidInputError(msg)
    msg = f"unknown window {window!r}: use {WINDOW_HELP}"
    raise InvalidInputError(msg)


def sequence_of(start: datetime, kind: str) -> int:
    """The place in its series of the time window of ``kind`` starting at ``start``."""
    return int((floor(start, kind) - _EPOCH[kind]) // _LENGTH[kind])


def floor(moment: datetime, kind: str) -> datetime:
    """The start of the window of ``kind`` that holds ``moment`` (timezone-aware)."""
    if kind not in _LENGTH:
        msg = f"unknown window {kind!r}: use one of {', '.join(TIME_WINDOWS)}"
        raise InvalidInputError(msg)
    if moment.tzinfo is None:
        msg = "window times must be timezone-aware"
        raise InvalidInputError(msg)
    utc = moment.astimezone(UTC)
    hour = utc.replace(minute=0, second=0, microsecond=0)
    if kind == "hour":
        return hour
    day = hour.replace(hour=0)
    return day if kind == "day" else day - timedelta(days=day.weekday())


def length_of(kind: str) -> timedelta:
    """How long a time window of ``kind`` is."""
    return _LENGTH[kind]


def complete_windows(
    first: datetime, now: datetime, kind: str, *, after: datetime | None = None
) -> list[tuple[datetime, datetime]]:
    """Every complete window from the one holding ``first`` up to ``now``; with ``after``
    (the end of the last window already computed), only the windows from there on."""
    start = floor(first, kind)
    if after is not None:
        start = max(start, floor(after, kind))
    length = _LENGTH[kind]
    windows: list[tuple[datetime, datetime]] = []
    while start + length <= now and len(windows) < MAX_WINDOWS:
        windows.append((start, start + length))
        start += length
    return windows


def count_windows(total: int, size: int, *, done: int = 0) -> list[tuple[int, int]]:
    """``[begin, end)`` row ranges of the complete count windows of ``size`` rows among
    ``total``, skipping the first ``done`` windows."""
    if size < 1:
        msg = "a count window needs at least one row"
        raise InvalidInputError(msg)
    full = min(total // size, done + MAX_WINDOWS)
    return [(i * size, (i + 1) * size) for i in range(done, full)]
