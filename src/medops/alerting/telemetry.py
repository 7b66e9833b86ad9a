"""Prometheus: ``medops_alerts{alertname,deployment,severity,team,state}``, the number of open
alerts (pending, firing, acknowledged), read from the database at each scrape."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from medops.alerting.tables import Alert
from medops.db.engine import Database
from medops.logs import get_logger

log = get_logger(__name__)
LABELS = ["alertname", "deployment", "severity", "team", "state"]


def _family() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "medops_alerts", "Open alerts by rule, deployment and state.", labels=LABELS
    )


class AlertCollector(Collector):
    """One sample per (alertname, deployment, severity, team, state) of the open alerts."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def describe(self) -> Iterator[Metric]:
        yield _family()

    def collect(self) -> Iterator[Metric]:
        family = _family()
        try:
            with self._db.session() as session:
                rows = session.execute(
                    select(Alert.name, Alert.deployment, Alert.severity, Alert.team, Alert.state,
                           func.count())
                    .where(Alert.state != "resolved")
                    .group_by(Alert.name, Alert.deployment, Alert.severity, Alert.team, Alert.state)
                ).all()  # fmt: skip
            for name, deployment, severity, team, state, count in rows:
                family.add_metric([name, deployment or "", severity, team, state], float(count))
        except SQLAlchemyError as exc:  # a scrape must not fail the whole /metrics page
            log.warning("alert metrics unavailable", error=type(exc).__name__)
        yield family
