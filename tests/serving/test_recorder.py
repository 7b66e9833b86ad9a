"""The usage recorder: predict requests counted per deployment and minute in memory, written
as serving_usage rows that add up across flushes, with CPU and memory attributed by request
time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from medops.db.engine import Database
from medops.services import Services
from medops.serving.recorder import MinuteUsage, UsageRecorder, attribute
from medops.serving.tables import ServingUsage
from medops.serving.usage import LATENCY_BOUNDS_MS, summarize
from medops.testing import FixedClock
from tests.helpers.registry import DEPLOYMENT, predict, random_records

START = datetime(2026, 3, 2, 9, 0, 10, tzinfo=UTC)


class ProcessStats:
    """The operating system's side (CPU seconds, resident bytes), set by the test."""

    def __init__(self) -> None:
        self.cpu = 100.0
        self.rss = 2e9

    def __call__(self) -> tuple[float, float]:
        return self.cpu, self.rss


def test_requests_are_counted_by_status_and_latency_bucket() -> None:
    """A 200 in 3 ms, a 400 and a shed 503: three requests, one client error, one error that
    is a shed, each in the bucket its latency falls in (upper bounds inclusive)."""
    clock = FixedClock(START)
    recorder = UsageRecorder(clock, "r1", sample=ProcessStats())
    recorder.request("a", 200, 0.003)
    recorder.request("a", 400, 0.0005)
    recorder.request("a", 503, 0.5, shed=True)
    recorder.scored("a", 5, 0.001)
    [(key, usage)] = recorder.take().items()
    assert key == ("a", START.replace(second=0))
    assert (usage.requests, usage.client_errors, usage.errors, usage.shed) == (3, 1, 1, 1)
    assert usage.records == 5
    assert usage.latency[LATENCY_BOUNDS_MS.index(5)] == 1
    assert usage.latency[0] == 1
    assert usage.latency[LATENCY_BOUNDS_MS.index(500)] == 1
    assert usage.gpu_seconds == 0.0  # CPU execution provider


def test_requests_land_in_the_minute_the_clock_says() -> None:
    """Requests a minute apart make two entries, keyed by the minute they were answered in."""
    clock = FixedClock(START)
    recorder = UsageRecorder(clock, "r1", sample=ProcessStats())
    recorder.request("a", 200, 0.01)
    clock.advance(timedelta(minutes=1))
    recorder.request("a", 200, 0.01)
    minutes = sorted(minute for _, minute in recorder.take())
    assert minutes == [START.replace(second=0), START.replace(second=0) + timedelta(minutes=1)]


def test_cpu_and_memory_are_split_by_request_time() -> None:
    """3 CPU seconds and 10 s of 2 GB over two deployments that took 30 and 10 ms: 3/4 and
    1/4 of each."""
    clock = FixedClock(START)
    stats = ProcessStats()
    recorder = UsageRecorder(clock, "r1", sample=stats)
    recorder.request("a", 200, 0.030)
    recorder.request("b", 200, 0.010)
    stats.cpu += 3.0
    clock.advance(timedelta(seconds=10))
    batch = recorder.take()
    a = batch[("a", START.replace(second=0))]
    b = batch[("b", START.replace(second=0))]
    assert (a.cpu_seconds, b.cpu_seconds) == pytest.approx((2.25, 0.75))
    assert (a.memory_byte_seconds, b.memory_byte_seconds) == pytest.approx((1.5e10, 0.5e10))


def test_memory_is_charged_for_the_minutes_served_not_a_long_gap() -> None:
    """A request, then a day without a take (an idle process, a clock that jumped): 2 GB is
    charged for the one minute served, not for the day."""
    clock = FixedClock(START)
    recorder = UsageRecorder(clock, "r1", sample=ProcessStats())
    recorder.request("a", 200, 0.010)
    clock.advance(timedelta(days=1))
    [usage] = recorder.take().values()
    assert usage.memory_byte_seconds == pytest.approx(2e9 * 60)


def test_nothing_is_attributed_without_requests() -> None:
    """An idle process's CPU is attributed to no deployment."""
    batch: dict[tuple[str, datetime], MinuteUsage] = {}
    attribute(batch, 5.0, 1e9)
    assert batch == {}


def test_gpu_seconds_are_inference_time_on_a_gpu_provider() -> None:
    """A process serving on CUDA counts the inference time of what it scored as GPU time."""
    recorder = UsageRecorder(FixedClock(START), "r1", sample=ProcessStats())
    recorder.providers = lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    recorder.scored("a", 4, 0.002)
    recorder.scored("a", 4, 0.003)
    [usage] = recorder.take().values()
    assert usage.gpu_seconds == pytest.approx(0.005)


def test_flushes_add_to_the_same_row(services: Services) -> None:
    """Two flushes in one minute add up in one row of this replica; another replica has its
    own row, and the summary sums both."""
    clock = FixedClock(START)
    first = UsageRecorder(clock, "replica-1", sample=ProcessStats())
    second = UsageRecorder(clock, "replica-2", sample=ProcessStats())
    first.request("a", 200, 0.004)
    assert first.flush(services.db) == 1
    first.request("a", 500, 0.2)
    first.scored("a", 2, 0.0)
    first.flush(services.db)
    second.request("a", 200, 0.004)
    second.flush(services.db)
    assert first.flush(services.db) == 0  # nothing new
    with services.db.session() as session:
        rows = session.scalar(select(func.count()).select_from(ServingUsage))
        summary = summarize(session, "a", START - timedelta(hours=1), START + timedelta(hours=1))
    assert rows == 2
    assert (summary.requests, summary.errors, summary.records) == (3, 1, 2)
    assert summary.share_under(500) == 1.0
    assert summary.share_under(100) == pytest.approx(2 / 3)


def test_the_prediction_path_records_usage(
    http: httpx.Client, services: Services, deployed: dict[str, dict[str, str]]
) -> None:
    """Predictions through the app are counted for their deployment (records scored, a
    refused request as a client error) and written when the recorder flushes."""
    headers = deployed["clin"]
    assert (
        predict(
            http, headers, {"records": [{"features": r} for r in random_records(3)]}
        ).status_code
        == 200
    )
    assert predict(http, headers, {"features": random_records(1)[0]}).status_code == 200
    assert predict(http, headers, {"features": {"age": "old"}}).status_code == 422
    assert predict(http, headers, {"features": {}}, name="nowhere").status_code == 404
    services.usage.flush(services.db)
    now = services.clock.now()
    with services.db.session() as session:
        summary = summarize(session, DEPLOYMENT, now - timedelta(hours=1), now + timedelta(hours=1))
        replicas = set(session.scalars(select(ServingUsage.replica)))
        deployments = set(session.scalars(select(ServingUsage.deployment)))
    assert (summary.requests, summary.client_errors, summary.errors) == (3, 1, 0)
    assert summary.records == 4
    assert summary.latency_sum_ms > 0
    assert replicas == {services.usage.replica}
    assert deployments == {DEPLOYMENT}  # an unknown deployment makes no row


def test_a_failed_flush_keeps_the_counts_for_the_next(services: Services, tmp_path: Path) -> None:
    """A database that cannot be written leaves the counts in memory; the next flush to a
    working one writes them all (and nothing twice)."""
    recorder = UsageRecorder(FixedClock(START), "r1", sample=ProcessStats())
    recorder.request("a", 200, 0.004)
    broken = Database(f"sqlite:///{tmp_path / 'missing' / 'medops.db'}")
    with pytest.raises(SQLAlchemyError):
        recorder.flush(broken)
    broken.dispose()
    recorder.request("a", 200, 0.004)
    assert asyncio.run(recorder.flush_async(services.db)) == 1
    with services.db.session() as session:
        summary = summarize(session, "a", START - timedelta(hours=1), START + timedelta(hours=1))
    assert summary.requests == 2
