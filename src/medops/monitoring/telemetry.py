"""Prometheus gauges of the latest monitoring window of each series, read from the stored
results at scrape time, so alert rules can page on drift, on alerts, on a performance
estimate or realized value, and on a series that stopped advancing."""

from __future__ import annotations

import json
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from medops.db.engine import Database
from medops.logs import get_logger
from medops.monitoring.results import WindowResult
from medops.monitoring.tables import MonitoringResult

log = get_logger("medops.monitoring")
LABELS = ("deployment", "version", "window")


def _families() -> dict[str, GaugeMetricFamily]:
    return {
        "drifted": GaugeMetricFamily(
            "medops_monitoring_window_drifted",
            "1 when the latest window of the series drifted (per feature or multivariate).",
            labels=LABELS,
        ),
        "alerts": GaugeMetricFamily(
            "medops_monitoring_window_alerts",
            "Alerts raised by the latest window of the series.",
            labels=LABELS,
        ),
        "end": GaugeMetricFamily(
            "medops_monitoring_window_end_timestamp_seconds",
            "End of the latest computed window of the series (Unix time).",
            labels=LABELS,
        ),
        "estimated": GaugeMetricFamily(
            "medops_monitoring_estimated_accuracy",
            "Accuracy of the latest window estimated without outcomes (CBPE).",
            labels=LABELS,
        ),
        "realized": GaugeMetricFamily(
            "medops_monitoring_realized_accuracy",
            "Accuracy of the latest window on its predictions with outcomes (when 30 or more).",
            labels=LABELS,
        ),
        "baseline": GaugeMetricFamily(
            "medops_monitoring_baseline_accuracy",
            "Validation baseline the latest window's realized accuracy is compared against.",
            labels=LABELS,
        ),
    }


class MonitoringCollector(Collector):
    """One sample per series (deployment, version, window kind) and gauge."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def describe(self) -> Iterator[Metric]:
        yield from _families().values()

    def collect(self) -> Iterator[Metric]:
        families = _families()
        latest = (
            select(
                MonitoringResult.deployment,
                MonitoringResult.version,
                MonitoringResult.window_kind,
                func.max(MonitoringResult.sequence).label("sequence"),
            )
            .group_by(
                MonitoringResult.deployment,
                MonitoringResult.version,
                MonitoringResult.window_kind,
            )
            .subquery()
        )
        try:
            with self._db.session() as session:
                rows = session.execute(
                    select(MonitoringResult).join(
                        latest,
                        (MonitoringResult.deployment == latest.c.deployment)
                        & (MonitoringResult.version == latest.c.version)
                        & (MonitoringResult.window_kind == latest.c.window_kind)
                        & (MonitoringResult.sequence == latest.c.sequence),
                    )
                ).scalars()
                for row in rows:
                    labels = [row.deployment, str(row.version), row.window_kind]
                    families["drifted"].add_metric(labels, float(row.drifted))
                    families["alerts"].add_metric(labels, float(len(json.loads(row.alerts))))
                    families["end"].add_metric(labels, row.window_end.timestamp())
                    document = WindowResult.load(json.loads(row.result))
                    estimated = document.estimated.metrics if document.estimated else {}
                    estimate = estimated.get("accuracy")
                    if estimate is not None and estimate.value is not None:
                        families["estimated"].add_metric(labels, float(estimate.value))
                    performance = document.performance
                    realized = performance.metrics.get("accuracy")
                    if (
                        performance.status == "ok"
                        and realized is not None
                        and realized.value is not None
                    ):
                        families["realized"].add_metric(labels, float(realized.value))
                        if realized.baseline is not None:
                            families["baseline"].add_metric(labels, float(realized.baseline))
        except SQLAlchemyError as exc:  # a scrape must not fail the whole /metrics page
            log.warning("monitoring metrics unavailable", error=type(exc).__name__)
        yield from families.values()
