"""SLO arithmetic against the Google SRE workbook's tables (chapter 5, "Alerting on SLOs"), on
synthetic request streams."""

from __future__ import annotations

from datetime import timedelta

import pytest

from medops.alerting.slo import (
    BURN_WINDOWS,
    MinuteSeries,
    budget,
    budget_consumed,
    burn_rate,
    check,
    check_all,
    detection_time,
    error_budget,
    rate_for_budget,
    time_to_exhaustion,
)

MONTH = timedelta(days=30)
TARGET = 0.999
RATE = 10_000  # requests per minute


def stream(*phases: tuple[int, float]) -> MinuteSeries:
    """Phases of (minutes, bad ratio) at RATE requests a minute."""
    minutes: list[tuple[int, int]] = []
    for count, ratio in phases:
        minutes += [(round(RATE * ratio), RATE)] * count
    return MinuteSeries(minutes)


@pytest.mark.parametrize(
    ("rate", "error_rate", "exhaustion"),
    [
        (1, 0.001, timedelta(days=30)),
        (2, 0.002, timedelta(days=15)),
        (10, 0.01, timedelta(days=3)),
        (1000, 1.0, timedelta(minutes=43.2)),
    ],
)
def test_burn_rates_and_time_to_exhaustion_match_table_5_4(
    rate: float, error_rate: float, exhaustion: timedelta
) -> None:
    """Workbook table 5-4, 99.9% over 30 days: burn rate, error rate, time to exhaust."""
    assert burn_rate(round(error_rate * 100_000), 100_000, TARGET) == pytest.approx(rate)
    spent = time_to_exhaustion(rate, MONTH)
    assert spent is not None
    assert spent.total_seconds() == pytest.approx(exhaustion.total_seconds())


@pytest.mark.parametrize(
    ("index", "severity", "long", "short", "factor", "consumed"),
    [
        (0, "page", timedelta(hours=1), timedelta(minutes=5), 14.4, 0.02),
        (1, "page", timedelta(hours=6), timedelta(minutes=30), 6, 0.05),
        (2, "ticket", timedelta(days=3), timedelta(hours=6), 1, 0.10),
    ],
)
def test_default_windows_are_table_5_8(
    index: int,
    severity: str,
    long: timedelta,
    short: timedelta,
    factor: float,
    consumed: float,
) -> None:
    """Workbook table 5-8: the recommended windows, factors and budget they consume in 30 d."""
    window = BURN_WINDOWS[index]
    assert (window.severity, window.long, window.short, window.factor) == (
        severity,
        long,
        short,
        factor,
    )
    assert window.budget_consumed(MONTH) == pytest.approx(consumed)
    assert rate_for_budget(consumed, long, MONTH) == pytest.approx(factor)
    assert window.short == window.long / 12


def test_two_percent_of_the_budget_in_one_hour_is_14_4() -> None:
    """Spending 2% of a 30-day budget in an hour is a burn rate of 14.4, an error rate of 1.44%."""
    assert rate_for_budget(0.02, timedelta(hours=1), MONTH) == pytest.approx(14.4)
    assert budget_consumed(14.4, timedelta(hours=1), MONTH) == pytest.approx(0.02)
    assert 14.4 * error_budget(TARGET) == pytest.approx(0.0144)


def test_detection_time_of_a_full_outage() -> None:
    """At 100% errors the 1 h/14.4 condition is met after 0.864 minutes (the workbook's
    "detection time" for a total outage)."""
    found = detection_time(timedelta(hours=1), 14.4, TARGET, 1.0)
    assert found.total_seconds() == pytest.approx(51.84)


def test_a_steady_burn_at_the_threshold_pages_and_just_below_does_not() -> None:
    """A day of 1.5% errors pages on the 1 h/5 m condition; 1.4% (burn 14) does not, but pages
    on 6 h/30 m (burn above 6)."""
    over = check(BURN_WINDOWS[0], stream((1440, 0.015)).counts, TARGET)
    assert over.firing
    assert over.long_rate == pytest.approx(15)
    under = check_all(stream((1440, 0.014)).counts, TARGET)
    assert [c.firing for c in under] == [False, True, True]


def test_a_short_outage_pages_fast_and_stops_paging_when_it_ends() -> None:
    """A clean day then 100% errors for 2 minutes: paged at the first minute of the outage;
    the 5 m window ends the page 5 minutes after the errors stop, although the 1 h burn rate
    is still high."""
    series = stream((1440, 0.0), (2, 1.0), (60, 0.0))
    fast = BURN_WINDOWS[0]
    outage = 1440  # index of the first bad minute
    assert not check(fast, series.at(outage - 1), TARGET).firing
    assert check(fast, series.at(outage), TARGET).firing
    assert check(fast, series.at(outage + 5), TARGET).firing  # 5 m window still has a bad one
    after = check(fast, series.at(outage + 6), TARGET)
    assert not after.firing
    assert after.long_rate is not None
    assert after.long_rate > fast.factor
    assert after.short_rate == 0


def test_a_slow_leak_opens_a_ticket_only() -> None:
    """Three days at 0.12% errors (burn 1.2): no page, a ticket."""
    checks = check_all(stream((3 * 1440, 0.0012)).counts, TARGET)
    assert [c.firing for c in checks] == [False, False, True]


def test_no_traffic_raises_nothing() -> None:
    """Without requests there is no burn rate and no condition holds."""
    checks = check_all(stream((1440, 0.0)).counts, TARGET)
    assert not any(c.firing for c in checks)
    empty = check_all(MinuteSeries([]).counts, TARGET)
    assert all(c.long_rate is None for c in empty)


def test_the_budget_left_after_an_incident() -> None:
    """30 days of 100 req/min, 0.1% allowed: 4,320 bad events allowed; 864 bad (ten hours at
    burn 14.4) leave 80% of the budget, and at burn 1 the rest lasts 24 days."""
    total = 30 * 1440 * 100
    status = budget(total - 864, total, TARGET)
    assert status.allowed_bad == pytest.approx(4320)
    assert status.remaining == pytest.approx(0.8)
    assert status.attainment == pytest.approx(1 - 864 / total)
    left = time_to_exhaustion(1, MONTH, status.remaining or 0)
    assert left == timedelta(days=24)
    assert pytest.approx(86.4) == 60 * 100 * 0.0144  # one hour at 14.4 is 2% of the budget


def test_an_objective_outside_zero_and_one_is_refused() -> None:
    """A target of 1 leaves no budget to burn: refused."""
    with pytest.raises(ValueError, match="between 0 and 1"):
        error_budget(1.0)
