"""Service-level objective arithmetic: error budgets, burn rates, and multi-window
multi-burn-rate alerts, as the Google SRE workbook ("Alerting on SLOs", chapter 5) defines
them. Pure: no database, no clock; the SLO service feeds it counts.

- An objective ``target`` (e.g. 0.999) over a ``period`` (28 or 30 days) allows an error budget
  of ``1 - target`` of the events to be bad.
- The burn rate over a window is the window's bad ratio over the budget: 1 spends the budget
  exactly in the period; 14.4 spends 2% of a 30-day budget in one hour.
- An alert condition holds when the burn rate over a long window AND over a short window (1/12
  of it) are both at least its factor: the long window makes it significant, the short one
  makes it stop soon after the errors stop. The workbook's recommendation, used by default:

  ========  ===========  ============  ===========  ==================
  Severity  Long window  Short window  Burn rate    Budget consumed
  ========  ===========  ============  ===========  ==================
  page      1 h          5 m           14.4         2%
  page      6 h          30 m          6            5%
  ticket    3 d          6 h           1            10%
  ========  ===========  ============  ===========  ==================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

BurnSeverity = Literal["page", "ticket"]


class BurnWindow(BaseModel):
    """One multi-window burn-rate condition."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    severity: BurnSeverity
    long: timedelta
    short: timedelta
    factor: float

    def budget_consumed(self, period: timedelta) -> float:
        """The share of the period's budget spent when the long window burns at ``factor``."""
        return budget_consumed(self.factor, self.long, period)


BURN_WINDOWS: tuple[BurnWindow, ...] = (
    BurnWindow(severity="page", long=timedelta(hours=1), short=timedelta(minutes=5), factor=14.4),
    BurnWindow(severity="page", long=timedelta(hours=6), short=timedelta(minutes=30), factor=6),
    BurnWindow(severity="ticket", long=timedelta(days=3), short=timedelta(hours=6), factor=1),
)
# bad events and all events over the span ending now
Counts = Callable[[timedelta], tuple[int, int]]


def error_budget(target: float) -> float:
    """The share of events allowed to be bad: ``1 - target``."""
    if not 0 < target < 1:
        msg = "an objective's target is between 0 and 1 (exclusive)"
        raise ValueError(msg)
    return 1 - target


def burn_rate(bad: int, total: int, target: float) -> float | None:
    """How fast ``bad`` of ``total`` events spend the budget (1: exactly over the period);
    None without events."""
    if not total:
        return None
    return (bad / total) / error_budget(target)


def budget_consumed(rate: float, window: timedelta, period: timedelta) -> float:
    """The share of the period's budget a burn ``rate`` held over ``window`` spends."""
    return rate * (window / period)


def rate_for_budget(consumed: float, window: timedelta, period: timedelta) -> float:
    """The burn rate that spends ``consumed`` of the period's budget in ``window``."""
    return consumed * (period / window)


def time_to_exhaustion(rate: float, period: timedelta, remaining: float = 1.0) -> timedelta | None:
    """How long until the budget left (``remaining``, a share) is spent at ``rate``; None
    when nothing burns."""
    if rate <= 0:
        return None
    return period * (max(remaining, 0.0) / rate)


def detection_time(window: timedelta, factor: float, target: float, bad_ratio: float) -> timedelta:
    """How long errors at ``bad_ratio`` (from a clean window) take to raise the window's burn
    rate to ``factor``: the workbook's detection time."""
    return window * min(factor * error_budget(target) / bad_ratio, 1.0)


class BudgetStatus(BaseModel):
    """An objective's budget over its period: how much is allowed, spent and left."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: float
    good: int
    total: int
    attainment: float | None  # good / total; None without events
    allowed_bad: float  # events the budget allows at this volume
    bad: int
    remaining: float | None  # share of the budget left (negative when overspent)


def budget(good: int, total: int, target: float) -> BudgetStatus:
    """The budget of ``target`` over a period in which ``good`` of ``total`` events were good."""
    allowed = total * error_budget(target)
    bad = total - good
    return BudgetStatus(
        target=target,
        good=good,
        total=total,
        attainment=good / total if total else None,
        allowed_bad=allowed,
        bad=bad,
        remaining=(1 - bad / allowed) if allowed else None,
    )


class BurnCheck(BaseModel):
    """One burn-rate condition evaluated: the rates over its two windows and whether it holds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window: BurnWindow
    long_rate: float | None
    short_rate: float | None
    firing: bool


def check(window: BurnWindow, counts: Counts, target: float) -> BurnCheck:
    """Evaluate ``window`` over ``counts`` (bad, total over a span ending now)."""
    long_rate = burn_rate(*counts(window.long), target)
    short_rate = burn_rate(*counts(window.short), target)
    firing = (
        long_rate is not None
        and short_rate is not None
        and long_rate >= window.factor
        and short_rate >= window.factor
    )
    return BurnCheck(window=window, long_rate=long_rate, short_rate=short_rate, firing=firing)


def check_all(
    counts: Counts, target: float, windows: Sequence[BurnWindow] = BURN_WINDOWS
) -> list[BurnCheck]:
    """Every burn-rate condition of ``windows`` over ``counts``."""
    return [check(window, counts, target) for window in windows]


class MinuteSeries:
    """Bad and total events per minute, oldest first, ending at the current minute: the counts
    the burn-rate windows read (the SLO service builds one from usage rows; tests build
    synthetic request streams)."""

    def __init__(self, minutes: Sequence[tuple[int, int]]) -> None:
        self._bad = [0]
        self._total = [0]
        for bad, total in minutes:  # prefix sums: any window in O(1)
            self._bad.append(self._bad[-1] + bad)
            self._total.append(self._total[-1] + total)

    def __len__(self) -> int:
        return len(self._bad) - 1

    def counts(self, span: timedelta, *, end: int | None = None) -> tuple[int, int]:
        """Bad and total events in the ``span`` of whole minutes ending after minute ``end``
        (default: the last)."""
        stop = len(self) if end is None else end + 1
        start = max(stop - int(span.total_seconds() // 60), 0)
        return self._bad[stop] - self._bad[start], self._total[stop] - self._total[start]

    def at(self, end: int) -> Counts:
        """The counts function as seen at minute ``end``."""
        return lambda span: self.counts(span, end=end)
