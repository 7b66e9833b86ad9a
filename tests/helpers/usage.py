"""Serving usage rows written straight to the database, as the recorder would write them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from medops.services import Services
from medops.serving.recorder import MinuteUsage, write
from medops.serving.usage import bucket_of
from tests.helpers.registry import DEPLOYMENT

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)  # the FixedClock's start


def traffic(
    services: Services,
    minutes: int,
    *,
    requests: int = 100,
    errors: int = 0,
    latency_ms: float = 10.0,
    end: datetime = NOW,
    replica: str = "r1",
    deployment: str = DEPLOYMENT,
) -> None:
    """``minutes`` of usage ending with ``end``'s minute, the same each minute."""
    batch = {}
    for i in range(minutes):
        usage = MinuteUsage(requests=requests, errors=errors, records=requests)
        usage.latency[bucket_of(latency_ms)] = requests
        usage.latency_sum_ms = latency_ms * requests
        batch[(deployment, end - timedelta(minutes=i))] = usage
    write(services.db, replica, batch)
