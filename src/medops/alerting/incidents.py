"""The SLA report's incidents: the alert engine's history of a deployment, as the report's
typed ``Incident`` rows (who acknowledged and resolved each alert, and when)."""

from __future__ import annotations

from datetime import datetime

from medops.alerting.records import AlertOut
from medops.alerting.service import AlertService
from medops.alerting.slo_schemas import Actor, Incident
from medops.alerting.slo_service import IncidentSource


def incident_of(alert: AlertOut) -> Incident:
    """One alert that fired, as an incident of the report."""
    acknowledged = (
        Actor(by=alert.acknowledged_by, at=alert.acknowledged_at)
        if alert.acknowledged_at is not None
        else None
    )
    resolved = (
        Actor(by=alert.resolved_by, at=alert.resolved_at) if alert.resolved_at is not None else None
    )
    return Incident(
        name=alert.name,
        severity=alert.severity,
        started=alert.firing_at or alert.started_at,
        acknowledged=acknowledged,
        resolved=resolved,
        notifications=alert.notifications,
        summary=alert.annotations.get("summary"),
    )


def from_alerts(alerts: AlertService) -> IncidentSource:
    """An incident source reading ``alerts``' history."""

    def source(deployment: str, start: datetime, end: datetime) -> list[Incident]:
        return [incident_of(a) for a in alerts.history(deployment, start, end)]

    return source
