"""``medops_alert_notifications{receiver,status}``: the outbox's rows per receiver and status
(queued, sent, dead), read from the database at each scrape, so every replica reports the
same installation-wide numbers. A growing ``queued`` or any ``dead`` is a receiver in
trouble (the engine's ``ReceiverFailing`` alert says so too)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from medops.alerting.tables import AlertNotification
from medops.db.engine import Database
from medops.logs import get_logger

log = get_logger("medops.alerting.metrics")


def _family() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "medops_alert_notifications",
        "Alert notifications in the outbox, per receiver and status (queued, sent, dead).",
        labels=["receiver", "status"],
    )


class NotificationCollector(Collector):
    """One sample per (receiver, status)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def describe(self) -> Iterator[Metric]:
        yield _family()

    def collect(self) -> Iterator[Metric]:
        family = _family()
        query = select(AlertNotification.receiver, AlertNotification.status, func.count()).group_by(
            AlertNotification.receiver, AlertNotification.status
        )
        try:
            with self._db.session() as session:
                for receiver, status, count in session.execute(query):
                    family.add_metric([receiver, status], float(count))
        except SQLAlchemyError:
            log.warning("alert notification counts unavailable", exc_info=True)
        yield family
