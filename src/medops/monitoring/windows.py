"""Monitoring windows over the prediction log: by time (hour, day, week, in UTC) or by count.

A window is ``[start, end)``. Only complete windows are computed (a window still filling would
raise alarms that the next rows cancel); time windows are aligned to the UTC hour, day and ISO
week (Monday 00:00), so every replica and every run cuts the log at the same places. Count
windows hold ``size`` consecutive predictions in log order; the last, partial one waits.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

from medops.errors import InvalidInputError

TimeWindow = Literal["hour", "day", "week"]
TIME_WINDOWS: tuple[str, ...] = get_args(TimeWindow)
_LENGTH = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}
MAX_WINDOWS = 10_000  # per run and series: a bound, so a mistaken clock cannot loop for ever


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
