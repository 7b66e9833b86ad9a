"""Triggers of retraining: a schedule, a monitoring verdict or alert, labelled data reaching a
size, or a person; evaluated by a Leader-leased job (``training.triggers``) in the server and
by ``medops train evaluate`` (a Kubernetes CronJob can run that instead).

Each evaluation looks at what happened since the trigger's ``checked_at`` (monitoring windows
computed, outcomes recorded, time passed), asks ``TrainingService.request`` for a run when the
condition holds, and moves ``checked_at`` on: a drift seen while a run is active is recorded as
a ``deduplicated`` event and consumed (the active run answers it), so one drift never queues two
retrainings. Creation, pausing and resuming are audited; every firing is a trigger event and an
audited ``training.request`` (or ``training.deduplicate``).
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from medops.audit.schemas import AuditEntry
from medops.audit.service import AuditService, exempt_from_audit_guard
from medops.auth.common import require_actor
from medops.clock import Clock
from medops.context import Context
from medops.core.canonical import canonical_json
from medops.db.engine import Database
from medops.errors import (
    FieldError,
    InvalidInputError,
    NotFoundError,
    TrainingBusyError,
)
from medops.monitoring.tables import MonitoringResult
from medops.registry.store import load_model
from medops.retraining.job_schemas import (
    EvaluationOut,
    RunRequest,
    TriggerEventOut,
    TriggerIn,
    TriggerOut,
)
from medops.retraining.job_tables import TrainingTrigger, TrainingTriggerEvent
from medops.retraining.jobs import TrainingService, event_out
from medops.serving.tables import Deployment, Outcome, Prediction


def trigger_out(row: TrainingTrigger) -> TriggerOut:
    """The API shape of a stored trigger."""
    return TriggerOut(
        id=row.id,
        definition=TriggerIn.model_validate_json(row.definition),
        paused=row.paused,
        created_at=row.created_at,
        created_by=row.created_by,
        checked_at=row.checked_at,
        last_fired_at=row.last_fired_at,
    )


class TriggerService:
    """Retraining triggers: definitions, pause and resume, evaluation (see the module)."""

    def __init__(
        self, db: Database, clock: Clock, audit: AuditService, training: TrainingService
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._training = training

    def create(self, ctx: Context, definition: TriggerIn) -> TriggerOut:
        """Store a trigger (audited ``training.trigger.create``); it looks at what happens
        from now on."""
        actor = require_actor(ctx)
        now = self._clock.now()
        with self._db.transaction() as session:
            load_model(session, definition.model)
            if definition.deployment is not None:
                found = session.scalars(
                    select(Deployment).where(Deployment.name == definition.deployment)
                ).first()
                if found is None or found.model_name != definition.model:
                    reason = f"no deployment {definition.deployment!r} of {definition.model!r}"
                    raise InvalidInputError(reason, errors=[FieldError("deployment", reason)])
            row = TrainingTrigger(
                id=f"tt_{secrets.token_hex(8)}",
                model=definition.model,
                kind=definition.kind,
                definition=canonical_json(definition.model_dump(mode="json")),
                paused=False,
                created_at=now,
                created_by=actor.username,
                checked_at=now,
                last_fired_at=None,
            )
            session.add(row)
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="training.trigger.create",
                    resource_type="training_trigger",
                    resource_id=row.id,
                    details={"after": definition.model_dump(mode="json")},
                ),
            )
            session.flush()
            return trigger_out(row)

    def set_paused(self, ctx: Context, trigger_id: str, *, paused: bool, reason: str) -> TriggerOut:
        """Pause or resume a trigger (audited ``training.trigger.pause|resume`` with the
        reason). A resumed trigger looks at what happens from now on, not while it was paused."""
        require_actor(ctx)
        with self._db.transaction() as session:
            row = self._load(session, trigger_id)
            if row.paused != paused:
                row.paused = paused
                if not paused:
                    row.checked_at = self._clock.now()
                self._audit.record(
                    session,
                    ctx,
                    AuditEntry(
                        action="training.trigger.pause" if paused else "training.trigger.resume",
                        resource_type="training_trigger",
                        resource_id=trigger_id,
                        details={"model": row.model, "reason": reason},
                    ),
                )
            session.flush()
            return trigger_out(row)

    def triggers(self, model: str | None = None) -> list[TriggerOut]:
        """Triggers, oldest first, of one model or all."""
        query = select(TrainingTrigger)
        if model is not None:
            query = query.where(TrainingTrigger.model == model)
        with self._db.session() as session:
            rows = session.scalars(query.order_by(TrainingTrigger.created_at, TrainingTrigger.id))
            return [trigger_out(r) for r in rows]

    def get(self, trigger_id: str) -> TriggerOut:
        """One trigger."""
        with self._db.session() as session:
            return trigger_out(self._load(session, trigger_id))

    @staticmethod
    def _load(session: Session, trigger_id: str) -> TrainingTrigger:
        row = session.get(TrainingTrigger, trigger_id)
        if row is None:
            raise NotFoundError(
                f"trigger {trigger_id!r} does not exist",
                errors=[FieldError("trigger", "unknown trigger")],
            )
        return row

    # -- evaluation -----------------------------------------------------------------------

    def evaluate(self, ctx: Context, *, now: datetime | None = None) -> EvaluationOut:
        """Evaluate every trigger that is not paused (see the module); returns the events."""
        now = now or self._clock.now()
        events: list[TriggerEventOut] = []
        checked = 0
        for trigger in self.triggers():
            if trigger.paused or trigger.definition.kind == "manual":
                continue
            checked += 1
            reason = self._condition(trigger, now)
            fired = False
            if reason is not None:
                fired = self._fire(ctx, trigger, reason, events)
            with self._db.transaction() as session:
                exempt_from_audit_guard(session)  # bookkeeping: the firing itself is audited
                row = self._load(session, trigger.id)
                row.checked_at = now
                if fired:
                    row.last_fired_at = now
        return EvaluationOut(checked=checked, events=events)

    def _fire(
        self, ctx: Context, trigger: TriggerOut, reason: str, events: list[TriggerEventOut]
    ) -> bool:
        definition = trigger.definition
        before = self._last_event_id(trigger.id)
        try:
            self._training.request(
                ctx,
                definition.model,
                RunRequest(reason=reason),
                trigger_id=trigger.id,
                kind=definition.kind,
            )
            fired = True
        except TrainingBusyError:
            fired = False  # recorded as deduplicated by request()
        except (InvalidInputError, NotFoundError) as exc:
            fired = False
            self._failed(ctx, trigger, f"{reason}; no run: {exc}")
        events.extend(self._events_after(trigger.id, before))
        return fired

    def _failed(self, ctx: Context, trigger: TriggerOut, detail: str) -> None:
        with self._db.transaction() as session:
            session.add(
                TrainingTriggerEvent(
                    trigger_id=trigger.id,
                    model=trigger.definition.model,
                    kind=trigger.definition.kind,
                    at=self._clock.now(),
                    outcome="failed",
                    run_id=None,
                    detail=detail[:4000],
                )
            )
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="training.trigger.fail",
                    resource_type="training_trigger",
                    resource_id=trigger.id,
                    details={"model": trigger.definition.model, "detail": detail[:1000]},
                ),
            )

    def _last_event_id(self, trigger_id: str) -> int:
        with self._db.session() as session:
            found = session.scalar(
                select(func.max(TrainingTriggerEvent.id)).where(
                    TrainingTriggerEvent.trigger_id == trigger_id
                )
            )
            return int(found or 0)

    def _events_after(self, trigger_id: str, after: int) -> list[TriggerEventOut]:
        with self._db.session() as session:
            rows = session.scalars(
                select(TrainingTriggerEvent)
                .where(
                    TrainingTriggerEvent.trigger_id == trigger_id,
                    TrainingTriggerEvent.id > after,
                )
                .order_by(TrainingTriggerEvent.id)
            )
            return [event_out(r) for r in rows]

    def _condition(self, trigger: TriggerOut, now: datetime) -> str | None:
        """Why ``trigger`` fires now, or None."""
        definition = trigger.definition
        since = trigger.checked_at
        if definition.kind == "schedule":
            assert definition.every_seconds is not None
            last = trigger.last_fired_at or trigger.created_at
            if now - last >= timedelta(seconds=definition.every_seconds):
                return f"schedule: every {definition.every_seconds} s (last {last.isoformat()})"
            return None
        with self._db.session() as session:
            if definition.kind == "monitoring":
                return _monitoring_reason(session, definition, since)
            assert definition.min_labelled is not None
            start = trigger.last_fired_at or trigger.created_at
            count = int(
                session.scalar(
                    select(func.count())
                    .select_from(Outcome)
                    .join(Prediction, Prediction.id == Outcome.prediction_id)
                    .where(
                        Prediction.model_name == definition.model,
                        Outcome.recorded_at > start,
                    )
                )
                or 0
            )
        if count >= definition.min_labelled:
            return f"labelled data: {count} new outcomes (at least {definition.min_labelled})"
        return None


def _monitoring_reason(session: Session, definition: TriggerIn, since: datetime) -> str | None:
    rows = session.scalars(
        select(MonitoringResult)
        .where(
            MonitoringResult.deployment == definition.deployment,
            MonitoringResult.computed_at > since,
        )
        .order_by(MonitoringResult.window_end, MonitoringResult.id)
    ).all()
    for row in rows:
        if row.verdict in definition.verdicts:
            return (
                f"monitoring: {row.verdict} in {row.deployment} v{row.version} "
                f"{row.window_kind} window {row.window_start.isoformat()}"
            )
        alerts = json.loads(row.alerts)
        if definition.on_alerts and alerts:
            return (
                f"monitoring alert in {row.deployment} v{row.version} "
                f"{row.window_kind} window: {'; '.join(str(a) for a in alerts)[:500]}"
            )
    return None
