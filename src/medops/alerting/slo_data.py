"""What SLOs read: usage per minute (every replica's rows summed), monitoring windows judged
for a quality objective, and the objectives in force."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from medops.alerting.slo_schemas import Objective, SloConfig, SloConfigOut
from medops.alerting.slo_tables import SloObjectiveVersion
from medops.monitoring.results import WindowResult
from medops.monitoring.tables import MonitoringResult
from medops.serving.tables import ServingUsage
from medops.serving.usage import LATENCY_BOUNDS_MS

ALL = "*"


class MinuteCounts:
    """One deployment's requests per minute: totals, server errors and the latency histogram,
    summed over replicas."""

    def __init__(self) -> None:
        self.requests: dict[datetime, int] = {}
        self.errors: dict[datetime, int] = {}
        self.latency: dict[datetime, list[int]] = {}
        self.records = 0

    def add(self, row: ServingUsage) -> None:
        minute = row.minute
        self.requests[minute] = self.requests.get(minute, 0) + row.requests
        self.errors[minute] = self.errors.get(minute, 0) + row.errors
        counts = json.loads(row.latency)
        have = self.latency.get(minute)
        if have is None:
            self.latency[minute] = [int(c) for c in counts]
        else:
            self.latency[minute] = [a + int(b) for a, b in zip(have, counts, strict=True)]
        self.records += row.records

    def bad_total(self, objective: Objective, minute: datetime) -> tuple[int, int]:
        """Bad and all requests of ``minute`` for a request objective."""
        total = self.requests.get(minute, 0)
        if objective.kind == "availability":
            return self.errors.get(minute, 0), total
        histogram = self.latency.get(minute)
        if histogram is None:
            return 0, total
        under = sum(
            count
            for bound, count in zip(LATENCY_BOUNDS_MS, histogram, strict=False)
            if bound <= objective.threshold_ms
        )
        return sum(histogram) - under, sum(histogram)


def read_minutes(session: Session, deployment: str, start: datetime, end: datetime) -> MinuteCounts:
    """``deployment``'s usage per minute in ``[start, end)``."""
    counts = MinuteCounts()
    rows = session.scalars(
        select(ServingUsage).where(
            ServingUsage.deployment == deployment,
            ServingUsage.minute >= start,
            ServingUsage.minute < end,
        )
    )
    for row in rows:
        counts.add(row)
    return counts


def window_accuracy(row: MonitoringResult) -> float | None:
    """A window's realised accuracy, or without outcomes its CBPE estimate; None without
    either."""
    document = WindowResult.load(json.loads(row.result))
    realized = document.performance.metrics.get("accuracy")
    if document.performance.status == "ok" and realized is not None and realized.value is not None:
        return float(realized.value)
    if document.estimated is not None:
        estimate = document.estimated.metrics.get("accuracy")
        if estimate is not None and estimate.value is not None:
            return float(estimate.value)
    return None


def window_good(row: MonitoringResult, objective: Objective) -> bool:
    """Whether a monitoring window counts as good for a quality objective: its verdict is
    stable, and its accuracy is at least the floor when one is set (a window without either
    accuracy is judged by its verdict alone)."""
    if row.verdict != "stable":
        return False
    if objective.accuracy_floor is None:
        return True
    accuracy = window_accuracy(row)
    return accuracy is None or accuracy >= objective.accuracy_floor


def quality_windows(
    session: Session, deployment: str, objective: Objective, start: datetime, end: datetime
) -> list[tuple[datetime, bool]]:
    """Each window of ``objective.window_kind`` that ended in ``(start, end]``: its end and
    whether it was good."""
    rows = session.scalars(
        select(MonitoringResult)
        .where(
            MonitoringResult.deployment == deployment,
            MonitoringResult.window_kind == objective.window_kind,
            MonitoringResult.window_end > start,
            MonitoringResult.window_end <= end,
        )
        .order_by(MonitoringResult.window_end)
    )
    return [(row.window_end, window_good(row, objective)) for row in rows]


def minute_of(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(second=0, microsecond=0)


def config_in_force(session: Session, deployment: str) -> SloConfigOut:
    """The newest version of ``deployment``'s objectives, else of ``*``, else the defaults."""
    for scope in (deployment, ALL) if deployment != ALL else (ALL,):
        row = session.scalar(
            select(SloObjectiveVersion)
            .where(SloObjectiveVersion.scope == scope)
            .order_by(SloObjectiveVersion.version.desc())
            .limit(1)
        )
        if row is not None:
            return config_out(row)
    return SloConfigOut(scope="default", **SloConfig().model_dump())


def config_out(row: SloObjectiveVersion) -> SloConfigOut:
    return SloConfigOut(
        scope=row.scope,
        version=row.version,
        created_at=row.created_at,
        created_by=row.created_by,
        **SloConfig.model_validate_json(row.document).model_dump(),
    )
