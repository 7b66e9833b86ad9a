"""Service-level objectives per deployment: the objectives in force (built-in defaults, an
installation-wide version ``*``, or the deployment's own version: versioned, audited
documents), where each stands over its rolling period (attainment, budget left, burn rates),
the burn-rate observations the alert engine turns into SloFastBurn/SloSlowBurn alerts, and the
month's SLA report.

Request objectives (availability, latency) read ``serving_usage`` rows (every replica's);
the quality objective reads monitoring windows. The arithmetic is in ``slo.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from medops.alerting import slo
from medops.alerting.schemas import Observation
from medops.alerting.slo_data import (
    ALL,
    MinuteCounts,
    config_in_force,
    config_out,
    minute_of,
    quality_windows,
    read_minutes,
)
from medops.alerting.slo_report import build_report, month_span, render_html
from medops.alerting.slo_schemas import (
    BurnOut,
    Incident,
    Objective,
    ObjectiveStatus,
    SlaReport,
    SloConfig,
    SloConfigIn,
    SloConfigOut,
    SloStatus,
)
from medops.alerting.slo_tables import SloObjectiveVersion
from medops.audit.schemas import AuditEntry
from medops.audit.service import AuditService
from medops.auth.common import require_actor
from medops.clock import Clock
from medops.context import Context
from medops.db.engine import Database
from medops.errors import FieldError, InvalidInputError
from medops.monitoring.configs import check_deployment
from medops.registry.approvals import canonical_json
from medops.serving.cost import CostReport, Prices, cost_report
from medops.serving.tables import Deployment, ServingUsage
from medops.serving.usage import deployments_with_usage

BURN_SPAN = max(w.long for w in slo.BURN_WINDOWS)  # 3 days: the longest burn window
# deployment, start, end -> the alerts that fired in the span (the alert engine's history)
IncidentSource = Callable[[str, datetime, datetime], list[Incident]]


def burn_series(counts: MinuteCounts, objective: Objective, now: datetime) -> slo.MinuteSeries:
    """The last BURN_SPAN of minutes, ending with the current one, as (bad, total)."""
    last = minute_of(now)
    size = int(BURN_SPAN.total_seconds() // 60)
    first = last - timedelta(minutes=size - 1)
    return slo.MinuteSeries(
        [counts.bad_total(objective, first + timedelta(minutes=i)) for i in range(size)]
    )


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def burn_out(check: slo.BurnCheck) -> BurnOut:
    window = check.window
    return BurnOut(
        severity=window.severity,
        long_window=_duration(window.long),
        short_window=_duration(window.short),
        factor=window.factor,
        long_rate=check.long_rate,
        short_rate=check.short_rate,
        firing=check.firing,
    )


class SloService:
    """Objectives, their status and burn rates, and the monthly SLA report."""

    def __init__(self, db: Database, clock: Clock, audit: AuditService, prices: Prices) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self.prices = prices
        # Where the SLA report's incidents come from (the alert engine's history).
        self.incident_sources: list[IncidentSource] = []

    # -- objectives ----------------------------------------------------------------------

    def config(self, deployment: str) -> SloConfigOut:
        """The objectives in force for ``deployment``: its own newest version, else the
        newest ``*`` version, else the built-in defaults."""
        with self._db.session() as session:
            if deployment != ALL:
                check_deployment(session, deployment)
            return config_in_force(session, deployment)

    def versions(self, scope: str) -> list[SloConfigOut]:
        """Every stored version of ``scope``'s objectives, oldest first."""
        with self._db.session() as session:
            rows = session.scalars(
                select(SloObjectiveVersion)
                .where(SloObjectiveVersion.scope == scope)
                .order_by(SloObjectiveVersion.version)
            )
            return [config_out(row) for row in rows]

    def set(self, ctx: Context, data: SloConfigIn) -> SloConfigOut:
        """Store a new version of ``data.scope``'s objectives (audited ``slo.set`` with before
        and after)."""
        actor = require_actor(ctx)
        config = SloConfig.model_validate(data.model_dump(exclude={"scope"}))
        after = config.model_dump(mode="json")
        with self._db.transaction() as session:
            if data.scope != ALL:
                check_deployment(session, data.scope, for_update=True)
            newest = session.scalar(
                select(SloObjectiveVersion)
                .where(SloObjectiveVersion.scope == data.scope)
                .order_by(SloObjectiveVersion.version.desc())
                .limit(1)
                .with_for_update()
            )
            before = json.loads(newest.document) if newest is not None else None
            version = (newest.version if newest is not None else 0) + 1
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="slo.set",
                    resource_type="slo",
                    resource_id=data.scope,
                    details={"version": version, "before": before, "after": after},
                ),
            )
            row = SloObjectiveVersion(
                scope=data.scope,
                version=version,
                document=canonical_json(after),
                created_at=self._clock.now(),
                created_by=actor.username,
            )
            session.add(row)
            session.flush()
            return config_out(row)

    # -- status --------------------------------------------------------------------------

    def status(self, deployment: str, now: datetime | None = None) -> SloStatus:
        """``deployment``'s objectives over the period ending ``now``."""
        now = now or self._clock.now()
        with self._db.session() as session:
            check_deployment(session, deployment)
            return status_of(session, deployment, now)

    def statuses(self, now: datetime | None = None) -> list[SloStatus]:
        """Every deployment's status."""
        now = now or self._clock.now()
        with self._db.session() as session:
            names = session.scalars(select(Deployment.name).order_by(Deployment.name))
            return [status_of(session, name, now) for name in list(names)]

    def observations(self, session: Session, now: datetime) -> list[Observation]:
        """The burn-rate signals of every deployment that served in the last 3 days, per
        request objective: ``slo_fast_burn`` (1 when a page condition holds: 14.4x over 1 h
        and 5 m, or 6x over 6 h and 30 m) and ``slo_slow_burn`` (1 when the ticket condition
        holds: 1x over 3 d and 6 h), labelled ``objective``."""
        since = minute_of(now) - BURN_SPAN
        names = session.scalars(
            select(ServingUsage.deployment)
            .where(ServingUsage.minute >= since)
            .group_by(ServingUsage.deployment)
            .order_by(ServingUsage.deployment)
        )
        found: list[Observation] = []
        for name in list(names):
            config = config_in_force(session, name)
            counts = read_minutes(session, name, since, minute_of(now) + timedelta(minutes=1))
            for objective in config.objectives:
                if objective.kind == "quality":
                    continue
                checks = slo.check_all(burn_series(counts, objective, now).counts, objective.target)
                page = any(c.firing for c in checks if c.window.severity == "page")
                ticket = any(c.firing for c in checks if c.window.severity == "ticket")
                for signal, value in (("slo_fast_burn", page), ("slo_slow_burn", ticket)):
                    found.append(
                        Observation(
                            signal=signal,
                            deployment=name,
                            labels={"objective": objective.name},
                            value=float(value),
                            evidence=f"/deployments/{name}",
                        )
                    )
        return found

    def report(self, deployment: str, month: str, now: datetime | None = None) -> SlaReport:
        """``deployment``'s SLA report for ``month`` (``YYYY-MM``), with the incidents of the
        registered sources."""
        now = now or self._clock.now()
        try:
            start, end = month_span(month)
        except ValueError as exc:
            raise InvalidInputError(
                f"month: {exc}", errors=[FieldError("month", str(exc))]
            ) from None
        if start > now:
            msg = "month: the month has not begun"
            raise InvalidInputError(msg, errors=[FieldError("month", "has not begun")])
        incidents = self.incidents(deployment, start, min(end, now))
        with self._db.session() as session:
            check_deployment(session, deployment)
            return build_report(session, deployment, month, now, incidents, self.prices)

    @staticmethod
    def report_html(report: SlaReport) -> str:
        """The report as a self-contained HTML page."""
        return render_html(report)

    def cost(
        self,
        *,
        deployment: str | None = None,
        days: int = 30,
        now: datetime | None = None,
    ) -> CostReport:
        """The cost of ``deployment`` (or of every deployment that served) over the last
        ``days``, at the installation's prices."""
        if not 1 <= days <= 366:
            msg = "days: must be between 1 and 366"
            raise InvalidInputError(msg, errors=[FieldError("days", "between 1 and 366")])
        end = minute_of(now or self._clock.now()) + timedelta(minutes=1)
        start = end - timedelta(days=days)
        with self._db.session() as session:
            if deployment is not None:
                check_deployment(session, deployment)
                names = [deployment]
            else:
                names = deployments_with_usage(session, start, end)
            return cost_report(session, start, end, self.prices, names)

    def incidents(self, deployment: str, start: datetime, end: datetime) -> list[Incident]:
        """The incidents of every registered source in ``[start, end)``, by start."""
        found: list[Incident] = []
        for source in self.incident_sources:
            found.extend(source(deployment, start, end))
        return sorted(found, key=lambda incident: incident.started)


def status_of(session: Session, deployment: str, now: datetime) -> SloStatus:
    """``deployment``'s status at ``now`` (read in ``session``)."""
    config = config_in_force(session, deployment)
    period = timedelta(days=config.period_days)
    start = now - period
    end_minute = minute_of(now) + timedelta(minutes=1)
    counts = read_minutes(session, deployment, minute_of(start), end_minute)
    statuses = []
    for objective in config.objectives:
        if objective.kind == "quality":
            windows = quality_windows(session, deployment, objective, start, now)
            good = sum(ok for _, ok in windows)
            statuses.append(_objective_status(objective, good, len(windows), []))
            continue
        bad = total = 0
        for minute in counts.requests:
            b, t = counts.bad_total(objective, minute)
            bad, total = bad + b, total + t
        checks = slo.check_all(burn_series(counts, objective, now).counts, objective.target)
        statuses.append(_objective_status(objective, total - bad, total, checks, period))
    return SloStatus(
        deployment=deployment,
        at=now,
        start=start,
        period_days=config.period_days,
        config_scope=config.scope,
        config_version=config.version,
        objectives=statuses,
    )


def _objective_status(
    objective: Objective,
    good: int,
    total: int,
    checks: list[slo.BurnCheck],
    period: timedelta | None = None,
) -> ObjectiveStatus:
    state = slo.budget(good, total, objective.target)
    hour = next((c.long_rate for c in checks if c.window.long == timedelta(hours=1)), None)
    exhaustion = None
    if hour is not None and period is not None and state.remaining is not None:
        left = slo.time_to_exhaustion(hour, period, state.remaining)
        exhaustion = left.total_seconds() / 3600 if left is not None else None
    return ObjectiveStatus(
        objective=objective,
        good=good,
        total=total,
        attainment=state.attainment,
        met=None if state.attainment is None else state.attainment >= objective.target,
        allowed_bad=state.allowed_bad,
        bad=state.bad,
        budget_remaining=state.remaining,
        burn_rate_1h=hour,
        exhaustion_hours=exhaustion,
        burn=[burn_out(c) for c in checks],
    )
