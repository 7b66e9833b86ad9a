"""Serving usage over a span: requests, errors, latency and resources per deployment, summed
from ``serving_usage`` rows (one per deployment, minute and server process).

The latency histogram has fixed bounds, so the share of requests under the SLO's threshold is
exact when the threshold is a bound (500 ms is) and percentiles are interpolated within a
bucket, as Prometheus' ``histogram_quantile`` does.
"""

from __future__ import annotations

import json
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from medops.serving.tables import ServingUsage

LATENCY_BOUNDS_MS: tuple[float, ...] = (
    1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
)  # fmt: skip


class UsageSummary(BaseModel):
    """A deployment's serving figures over ``[start, end)``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    deployment: str
    start: datetime
    end: datetime
    requests: int = 0
    errors: int = 0
    shed: int = 0
    client_errors: int = 0
    records: int = 0
    latency_counts: tuple[int, ...] = (0,) * (len(LATENCY_BOUNDS_MS) + 1)
    latency_sum_ms: float = 0.0
    cpu_seconds: float = 0.0
    gpu_seconds: float = 0.0
    memory_byte_seconds: float = 0.0

    @property
    def error_rate(self) -> float | None:
        """Server errors per request answered; None without requests."""
        return self.errors / self.requests if self.requests else None

    def share_under(self, threshold_ms: float) -> float | None:
        """The share of requests answered within ``threshold_ms`` (by whole buckets: the
        threshold is rounded down to a bound)."""
        total = sum(self.latency_counts)
        if not total:
            return None
        under = sum(
            count
            for bound, count in zip(LATENCY_BOUNDS_MS, self.latency_counts, strict=False)
            if bound <= threshold_ms
        )
        return under / total

    def quantile_ms(self, q: float) -> float | None:
        """The ``q`` quantile of latency, interpolated linearly within its bucket (the last,
        unbounded bucket answers its lower bound)."""
        total = sum(self.latency_counts)
        if not total:
            return None
        rank = q * total
        seen = 0.0
        lower = 0.0
        for index, count in enumerate(self.latency_counts):
            upper = LATENCY_BOUNDS_MS[index] if index < len(LATENCY_BOUNDS_MS) else None
            if count and seen + count >= rank:
                if upper is None:
                    return lower
                return lower + (upper - lower) * (rank - seen) / count
            seen += count
            lower = upper if upper is not None else lower
        return lower


def bucket_of(latency_ms: float) -> int:
    """The histogram bucket ``latency_ms`` falls in (upper bounds inclusive)."""
    for index, bound in enumerate(LATENCY_BOUNDS_MS):
        if latency_ms <= bound:
            return index
    return len(LATENCY_BOUNDS_MS)


def summarize(session: Session, deployment: str, start: datetime, end: datetime) -> UsageSummary:
    """Sum ``deployment``'s usage rows whose minute is in ``[start, end)``."""
    rows = session.execute(
        select(ServingUsage).where(
            ServingUsage.deployment == deployment,
            ServingUsage.minute >= start,
            ServingUsage.minute < end,
        )
    ).scalars()
    counts = [0] * (len(LATENCY_BOUNDS_MS) + 1)
    totals = {
        "requests": 0, "errors": 0, "shed": 0, "client_errors": 0, "records": 0,
    }  # fmt: skip
    floats = {"latency_sum_ms": 0.0, "cpu_seconds": 0.0, "gpu_seconds": 0.0}
    memory = 0.0
    for row in rows:
        for name in totals:
            totals[name] += getattr(row, name)
        for name in floats:
            floats[name] += getattr(row, name)
        memory += row.memory_byte_seconds
        for index, count in enumerate(json.loads(row.latency)):
            counts[index] += int(count)
    return UsageSummary(
        deployment=deployment,
        start=start,
        end=end,
        latency_counts=tuple(counts),
        memory_byte_seconds=memory,
        **totals,
        **floats,
    )


def deployments_with_usage(session: Session, start: datetime, end: datetime) -> list[str]:
    """The deployments that have usage rows in ``[start, end)``."""
    return list(
        session.scalars(
            select(ServingUsage.deployment)
            .where(ServingUsage.minute >= start, ServingUsage.minute < end)
            .group_by(ServingUsage.deployment)
            .order_by(ServingUsage.deployment)
        )
    )
