"""The signals alert rules compare: ``Observation``s read from what medops already stores.

Per deployment, from its newest monitoring window of each kind and version
(``monitoring_results``; labels ``window`` and ``version``): ``drift_detected``,
``feature_drift`` (label ``feature``), ``performance_drop`` (percent below the reference),
``cbpe_outside_band``, ``calibration_error`` (ECE), ``fairness_ratio`` (the worst group's),
``no_outcomes`` and ``monitoring_stale``; from the prediction log, ``outcome_backlog``; from
serving usage over the last five minutes, ``error_rate``, ``latency_p95_ms``,
``latency_p99_ms``, ``shed_rate`` and ``no_traffic``; from deployment events,
``canary_rolled_back``. Installation-wide, from the outbox, ``receiver_failing`` (label
``receiver``). Only counts and statistics: no feature value or patient identifier is read into
an observation.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from medops.alerting.schemas import Observation
from medops.alerting.tables import AlertNotification
from medops.monitoring.results import WindowResult
from medops.monitoring.tables import MonitoringResult
from medops.serving.tables import Deployment, DeploymentEvent, Outcome, Prediction
from medops.serving.usage import summarize

SERVING_SPAN = timedelta(minutes=5)
NO_TRAFFIC_SPAN = timedelta(minutes=15)
BACKLOG_AGE = timedelta(days=1)
BACKLOG_SPAN = timedelta(days=7)
FAILING_LAST = 3
PRIMARY_METRICS = ("accuracy", "auroc", "balanced_accuracy", "f1")


def observe(session: Session, now: datetime) -> list[Observation]:
    """Every built-in signal of every deployment, and the installation's, at ``now``."""
    found: list[Observation] = []
    for name in session.scalars(select(Deployment.name).order_by(Deployment.name)):
        found += monitoring_signals(session, name, now)
        found += serving_signals(session, name, now)
        found += event_signals(session, name, now)
    found += receiver_signals(session, now)
    return found


def monitoring_signals(session: Session, deployment: str, now: datetime) -> list[Observation]:
    """Signals of the deployment's newest window of each kind (label ``window``: hour, day,
    week or count:N) and version (label ``version``: a canary's windows are its own), and its
    outcome backlog. ``monitoring_stale`` is judged on the newest
    window of any kind; a kind whose newest window is itself stale (an hourly run tried once,
    long ago) gives no other signal, so an old view cannot keep an alert firing."""
    rows = _newest_per_kind(session, deployment)
    found = [_backlog(session, deployment, now)]
    if not rows:
        return [o for o in found if o is not None]
    newest = max(rows, key=lambda r: (r.window_end, r.computed_at))
    found.append(
        Observation(
            signal="monitoring_stale",
            deployment=deployment,
            value=float(_stale(newest, now)),
            evidence=_evidence(newest),
        )
    )
    for row in rows:
        if row is newest or not _stale(row, now):
            found += _window_signals(row)
    return [o for o in found if o is not None]


def _newest_per_kind(session: Session, deployment: str) -> list[MonitoringResult]:
    newest: dict[tuple[str, int], MonitoringResult] = {}
    ends = (
        select(
            MonitoringResult.window_kind,
            MonitoringResult.version,
            func.max(MonitoringResult.window_end).label("end"),
        )
        .where(MonitoringResult.deployment == deployment)
        .group_by(MonitoringResult.window_kind, MonitoringResult.version)
        .subquery()
    )
    query = (
        select(MonitoringResult)
        .join(
            ends,
            and_(
                MonitoringResult.window_kind == ends.c.window_kind,
                MonitoringResult.version == ends.c.version,
                MonitoringResult.window_end == ends.c.end,
            ),
        )
        .where(MonitoringResult.deployment == deployment)
        .order_by(MonitoringResult.computed_at)
    )
    for row in session.scalars(query):
        newest[(row.window_kind, row.version)] = row  # the last computed of the newest end
    return list(newest.values())


def _stale(row: MonitoringResult, now: datetime) -> bool:
    return now - row.window_end > 2 * (row.window_end - row.window_start)


def _evidence(row: MonitoringResult) -> str:
    return f"/deployments/{row.deployment}/windows/{row.window_kind}/{row.version}/{row.sequence}"


def _window_signals(row: MonitoringResult) -> list[Observation]:
    found: list[Observation] = []
    evidence = _evidence(row)

    def seen(signal: str, value: float, **labels: str) -> None:
        found.append(
            Observation(
                signal=signal,
                deployment=row.deployment,
                value=value,
                labels={"window": row.window_kind, "version": str(row.version), **labels},
                evidence=evidence,
            )
        )

    seen("drift_detected", float(row.drifted))
    seen("no_outcomes", float(row.rows > 0 and row.labelled == 0))
    result = WindowResult.load(json.loads(row.result))
    for feature in result.dataset.drifted_features:
        seen("feature_drift", 1.0, feature=feature)
    drop = _performance_drop(result)
    if drop is not None:
        seen("performance_drop", drop)
    ece = result.performance.calibration.ece.value
    if ece is not None:
        seen("calibration_error", float(ece))
    if result.estimated is not None and result.estimated.status == "ok":
        outside = any(m.alert for m in result.estimated.metrics.values())
        seen("cbpe_outside_band", float(outside))
    ratio = _worst_ratio(result)
    if ratio is not None:
        seen("fairness_ratio", ratio)
    return found


def _performance_drop(result: WindowResult) -> float | None:
    metrics = result.performance.metrics
    for name in (*PRIMARY_METRICS, *sorted(metrics)):
        metric = metrics.get(name)
        if metric is None or metric.value is None or not metric.baseline:
            continue
        baseline = float(metric.baseline)
        return max(0.0, 100.0 * (baseline - float(metric.value)) / baseline)
    return None


def _worst_ratio(result: WindowResult) -> float | None:
    if result.fairness is None:
        return None
    ratios = [
        float(metric.ratio)
        for attribute in result.fairness.attributes
        for group in attribute.groups
        for metric in (group.metrics or {}).values()
        if metric.ratio is not None
    ]
    return min(ratios) if ratios else None


def _backlog(session: Session, deployment: str, now: datetime) -> Observation | None:
    old = and_(
        Prediction.deployment == deployment,
        Prediction.shadow.is_(False),
        Prediction.occurred_at <= now - BACKLOG_AGE,
        Prediction.occurred_at > now - BACKLOG_AGE - BACKLOG_SPAN,
    )
    total = session.scalar(select(func.count()).select_from(Prediction).where(old)) or 0
    if not total:
        return None
    waiting = (
        session.scalar(
            select(func.count())
            .select_from(Prediction)
            .outerjoin(Outcome, Outcome.prediction_id == Prediction.id)
            .where(old, Outcome.prediction_id.is_(None))
        )
        or 0
    )
    return Observation(
        signal="outcome_backlog",
        deployment=deployment,
        value=waiting / total,
        evidence=f"/deployments/{deployment}",
    )


def serving_signals(session: Session, deployment: str, now: datetime) -> list[Observation]:
    """Error rate, latency percentiles and shedding over the last five minutes, and whether a
    deployment that had traffic in the past day has had none for fifteen."""
    evidence = f"/deployments/{deployment}"
    found: list[Observation] = []

    def seen(signal: str, value: float | None) -> None:
        if value is not None:
            found.append(
                Observation(signal=signal, deployment=deployment, value=value, evidence=evidence)
            )

    recent = summarize(session, deployment, now - SERVING_SPAN, now)
    if recent.requests:
        seen("error_rate", recent.error_rate)
        seen("latency_p95_ms", recent.quantile_ms(0.95))
        seen("latency_p99_ms", recent.quantile_ms(0.99))
        seen("shed_rate", recent.shed / recent.requests)
    quiet = summarize(session, deployment, now - NO_TRAFFIC_SPAN, now).requests == 0
    day = summarize(session, deployment, now - timedelta(days=1), now).requests
    seen("no_traffic", float(quiet and day > 0))
    return found


def event_signals(session: Session, deployment: str, now: datetime) -> list[Observation]:
    """``canary_rolled_back``: automatic rollbacks of the deployment in the last hour."""
    count = session.scalar(
        select(func.count())
        .select_from(DeploymentEvent)
        .join(Deployment, Deployment.id == DeploymentEvent.deployment_id)
        .where(
            Deployment.name == deployment,
            DeploymentEvent.kind == "auto-rollback",
            DeploymentEvent.occurred_at > now - timedelta(hours=1),
        )
    )
    return [
        Observation(
            signal="canary_rolled_back",
            deployment=deployment,
            value=float(count or 0),
            evidence=f"/deployments/{deployment}",
        )
    ]


def receiver_signals(session: Session, now: datetime) -> list[Observation]:
    """``receiver_failing`` per receiver: 1 when its last three notifications all failed
    (an error recorded, not sent) or one died in the last day."""
    found: list[Observation] = []
    receivers = session.scalars(select(AlertNotification.receiver).distinct())
    for receiver in sorted(receivers):
        last = session.execute(
            select(AlertNotification.status, AlertNotification.last_error)
            .where(AlertNotification.receiver == receiver)
            .order_by(AlertNotification.created_at.desc(), AlertNotification.id.desc())
            .limit(FAILING_LAST)
        ).all()
        failing = len(last) == FAILING_LAST and all(
            status != "sent" and error is not None for status, error in last
        )
        dead = session.scalar(
            select(func.count())
            .select_from(AlertNotification)
            .where(
                AlertNotification.receiver == receiver,
                AlertNotification.status == "dead",
                AlertNotification.created_at > now - timedelta(days=1),
            )
        )
        found.append(
            Observation(
                signal="receiver_failing",
                labels={"receiver": receiver},
                value=float(failing or bool(dead)),
                evidence="/alerts",
            )
        )
    return found
