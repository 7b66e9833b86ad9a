"""Alerting's use cases: evaluate rules, move alerts through their life, answer them, silence
them, and keep the rule sets and routing configuration as versioned, audited documents.

``evaluate`` is the job (the server's ``_alerting`` loop runs it under a lease; ``medops
alerts evaluate`` runs it once): read every signal, compare the rules in force, move alerts
(pending → firing after the rule's ``for``; resolved when the condition ends), mark silenced
and inhibited ones, then group, notify and escalate (``escalation.py``), all in one
transaction with the audit records of every transition (``alert.pending``, ``alert.firing``,
``alert.resolved``, by the system actor). A person acknowledges (escalation stops) or
resolves by hand (``alert.acknowledged``, ``alert.resolved``, with their note).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from medops.alerting import signals, silences, store
from medops.alerting.defaults import effective_rules
from medops.alerting.escalation import FIRING, Notifier
from medops.alerting.evaluate import Condition, conditions
from medops.alerting.records import (
    AlertOut,
    ConfigOut,
    EvaluationSummary,
    RuleSetOut,
    SilenceIn,
    SilenceOut,
)
from medops.alerting.schemas import AlertingConfig, AlertRule, AlertState, Observation, RuleSet
from medops.alerting.tables import Alert, AlertNotificationLink, AlertSilence
from medops.audit.schemas import AuditEntry
from medops.audit.service import AuditService, exempt_from_audit_guard
from medops.auth.common import require_actor
from medops.clock import Clock
from medops.context import SYSTEM_ACTOR, Context
from medops.core.canonical import canonical_json
from medops.db.engine import Database
from medops.errors import ConflictError, FieldError, InvalidInputError, NotFoundError

SignalSource = Callable[[Session, datetime], list[Observation]]
RACE_ATTEMPTS = 3


class AlertService:
    """Rules, alerts, silences and routing of one installation."""

    def __init__(self, db: Database, clock: Clock, audit: AuditService) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        # More signals (the SLO burn rates) are appended here by other domains.
        self.signal_sources: list[SignalSource] = [signals.observe]

    # -- documents ------------------------------------------------------------------------

    def rules(self, scope: str = "*") -> RuleSetOut:
        """The rule set of ``scope`` (``*`` or a deployment) and the rule names in force."""
        with self._db.session() as session:
            return store.rules_out(session, scope)

    def set_rules(self, ctx: Context, rule_set: RuleSet) -> RuleSetOut:
        """Store a new version of a scope's rule set; audited ``alerts.rules.set``."""
        actor = require_actor(ctx)
        names = [rule.name for rule in rule_set.rules]
        if len(names) != len(set(names)):
            msg = "a rule set names each rule once"
            raise InvalidInputError(msg, errors=[FieldError("rules", "duplicate rule name")])
        with self._db.transaction() as session:
            store.check_scope(session, rule_set.scope)
            store.save(
                session, self._audit, ctx, store.RULES, rule_set.scope, rule_set,
                actor.username, self._clock.now(),
            )  # fmt: skip
            session.flush()
            return store.rules_out(session, rule_set.scope)

    def config(self) -> ConfigOut:
        """The routing configuration in force."""
        with self._db.session() as session:
            return store.config_out(session)

    def set_config(self, ctx: Context, config: AlertingConfig) -> ConfigOut:
        """Store a new version of the routing configuration; audited ``alerts.config.set``."""
        actor = require_actor(ctx)
        store.check_config(config)
        with self._db.transaction() as session:
            store.save(
                session, self._audit, ctx, store.CONFIG, "*", config,
                actor.username, self._clock.now(),
            )  # fmt: skip
            session.flush()
            return store.config_out(session)

    # -- alerts ---------------------------------------------------------------------------

    def list_alerts(
        self,
        *,
        state: AlertState | None = None,
        deployment: str | None = None,
        include_resolved: bool = False,
        limit: int = 100,
    ) -> list[AlertOut]:
        """Alerts, newest first: open ones unless ``state`` or ``include_resolved`` say."""
        query = select(Alert).order_by(Alert.started_at.desc(), Alert.id).limit(limit)
        if state is not None:
            query = query.where(Alert.state == state)
        elif not include_resolved:
            query = query.where(Alert.state != "resolved")
        if deployment is not None:
            query = query.where(Alert.deployment == deployment)
        with self._db.session() as session:
            return [_out(session, row) for row in session.scalars(query)]

    def get(self, alert_id: str) -> AlertOut:
        """One alert."""
        with self._db.session() as session:
            return _out(session, _alert(session, alert_id))

    def acknowledge(self, ctx: Context, alert_id: str, note: str | None = None) -> AlertOut:
        """Take a firing alert: escalation stops; audited ``alert.acknowledged``."""
        actor = require_actor(ctx)
        now = self._clock.now()
        with self._db.transaction() as session:
            row = _alert(session, alert_id, for_update=True)
            if row.state != "firing":
                msg = f"alert {alert_id} is {row.state}; only a firing alert is acknowledged"
                raise ConflictError(msg)
            row.state = "acknowledged"
            row.acknowledged_at = now
            row.acknowledged_by = actor.username
            row.acknowledge_note = note
            row.updated_at = now
            self._transition(session, ctx, row, "alert.acknowledged", note)
            return _out(session, row)

    def resolve(self, ctx: Context, alert_id: str, note: str | None = None) -> AlertOut:
        """End an alert by hand (it fires anew as a new alert if its condition still holds);
        audited ``alert.resolved``."""
        actor = require_actor(ctx)
        now = self._clock.now()
        with self._db.transaction() as session:
            row = _alert(session, alert_id, for_update=True)
            if row.state == "resolved":
                msg = f"alert {alert_id} is already resolved"
                raise ConflictError(msg)
            _end(row, now, actor.username, note)
            self._transition(session, ctx, row, "alert.resolved", note)
            return _out(session, row)

    def history(self, deployment: str, start: datetime, end: datetime) -> list[AlertOut]:
        """The deployment's alerts that fired within [start, end), oldest first, with who
        acknowledged and resolved them and how many notifications went out."""
        query = (
            select(Alert)
            .where(
                Alert.deployment == deployment,
                Alert.firing_at.is_not(None),
                Alert.firing_at < end,
                (Alert.resolved_at.is_(None)) | (Alert.resolved_at >= start),
            )
            .order_by(Alert.firing_at, Alert.id)
        )
        with self._db.session() as session:
            return [_out(session, row) for row in session.scalars(query)]

    # -- silences -------------------------------------------------------------------------

    def silence(self, ctx: Context, data: SilenceIn) -> SilenceOut:
        """Mute matching alerts until ``ends_at``; audited ``alert.silence.create``."""
        actor = require_actor(ctx)
        now = self._clock.now()
        starts = data.starts_at or now
        if data.ends_at <= max(starts, now):
            msg = "a silence must end in the future, after it starts"
            raise InvalidInputError(msg, errors=[FieldError("ends_at", "not after the start")])
        row = AlertSilence(
            id=uuid.uuid4().hex,
            matchers=canonical_json([m.model_dump() for m in data.matchers]),
            starts_at=starts,
            ends_at=data.ends_at,
            author=actor.username,
            reason=data.reason,
            created_at=now,
        )
        with self._db.transaction() as session:
            session.add(row)
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="alert.silence.create",
                    resource_type="alert_silence",
                    resource_id=row.id,
                    reason=data.reason,
                    details=json.loads(
                        canonical_json(data.model_dump(mode="json", exclude={"reason"}))
                    ),
                ),
            )
            return silences.out(row, now)

    def list_silences(self, *, everything: bool = False) -> list[SilenceOut]:
        """Silences not over yet (all of them with ``everything``), newest first."""
        with self._db.session() as session:
            return silences.listed(session, self._clock.now(), everything=everything)

    def expire_silence(self, ctx: Context, silence_id: str) -> SilenceOut:
        """End a silence now; audited ``alert.silence.expire``."""
        actor = require_actor(ctx)
        now = self._clock.now()
        with self._db.transaction() as session:
            row = session.get(AlertSilence, silence_id, with_for_update=True)
            if row is None:
                msg = f"no silence {silence_id!r}"
                raise NotFoundError(msg)
            if row.expired_at is not None or row.ends_at <= now:
                msg = f"silence {silence_id} is already over"
                raise ConflictError(msg)
            row.expired_at = now
            row.expired_by = actor.username
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="alert.silence.expire",
                    resource_type="alert_silence",
                    resource_id=row.id,
                ),
            )
            return silences.out(row, now)

    # -- the job --------------------------------------------------------------------------

    def evaluate(self, ctx: Context, now: datetime | None = None) -> EvaluationSummary:
        """One evaluation at ``now`` (the clock's time by default); see the module.

        Two evaluators racing (replicas without the lease) may both open the same alert: the
        unique ``open_key`` refuses the second, whose evaluation runs again and then finds
        the first's rows (and queues nothing twice: the dedup keys are unique too)."""
        now = now or self._clock.now()
        observed: list[Observation] = []
        with self._db.session() as reading:  # outside the write transaction: it only reads
            for source in self.signal_sources:
                observed += source(reading, now)
        for attempt in range(RACE_ATTEMPTS):
            try:
                return self._evaluate(ctx, now, observed)
            except IntegrityError:
                if attempt == RACE_ATTEMPTS - 1:
                    raise
        raise AssertionError  # pragma: no cover - the loop returns or raises

    def _evaluate(
        self, ctx: Context, now: datetime, observed: list[Observation]
    ) -> EvaluationSummary:
        system = Context(actor=SYSTEM_ACTOR, origin=ctx.origin)
        counts = {"pending": 0, "firing": 0, "resolved": 0}
        with self._db.transaction() as session:
            # Values, timers, flags and outbox rows are bookkeeping; each transition of an
            # alert is audited below.
            exempt_from_audit_guard(session)
            defaults = store.defaults(session)
            own: dict[str, RuleSet | None] = {}

            def rules_of(deployment: str | None) -> list[AlertRule]:
                if deployment is None:
                    return list(defaults.rules)
                if deployment not in own:
                    own[deployment] = store.rule_set(session, deployment)
                return effective_rules(defaults, own[deployment])

            holding = {c.fingerprint: c for c in conditions(rules_of, observed)}
            open_rows = {
                row.fingerprint: row
                for row in session.scalars(
                    select(Alert).where(Alert.state != "resolved").with_for_update()
                )
            }
            for key, condition in sorted(holding.items()):
                row = open_rows.get(key)
                if row is None:
                    row = self._open(session, system, condition, now)
                    open_rows[key] = row
                    counts["pending"] += 1
                row.value = condition.observation.value
                row.evidence = condition.observation.evidence
                row.updated_at = now
                due = row.started_at + timedelta(seconds=condition.rule.for_seconds)
                if row.state == "pending" and now >= due:
                    row.state = "firing"
                    row.firing_at = now
                    self._transition(session, system, row, "alert.firing")
                    counts["firing"] += 1
            for key, row in sorted(open_rows.items()):
                if key not in holding:
                    _end(row, now, None, None)
                    self._transition(session, system, row, "alert.resolved")
                    counts["resolved"] += 1
            live = [row for row in open_rows.values() if row.state != "resolved"]
            config = store.config(session)
            muted = silences.active(session, now)
            sources = [json.loads(r.labels) for r in live if r.state in FIRING]
            for row in live:
                labels = json.loads(row.labels)
                row.silenced = silences.silenced(muted, labels)
                row.inhibited = silences.inhibited(config.inhibitions, sources, labels)
            notifiable = [r for r in live if r.state in FIRING and not (r.silenced or r.inhibited)]
            session.flush()
            queued = Notifier(session, config, now).run(notifiable)
            return EvaluationSummary(
                at=now,
                observations=len(observed),
                notifications=queued,
                open=len(live),
                **counts,
            )

    def _open(self, session: Session, ctx: Context, found: Condition, now: datetime) -> Alert:
        rule = found.rule
        row = Alert(
            id=uuid.uuid4().hex,
            fingerprint=found.fingerprint,
            open_key=found.fingerprint,
            name=rule.name,
            deployment=found.observation.deployment,
            severity=rule.severity,
            team=rule.team,
            labels=canonical_json(found.labels),
            annotations=canonical_json(rule.annotations),
            value=found.observation.value,
            evidence=found.observation.evidence,
            state="pending",
            silenced=False,
            inhibited=False,
            started_at=now,
            updated_at=now,
        )
        session.add(row)
        self._transition(session, ctx, row, "alert.pending")
        return row

    def _transition(
        self, session: Session, ctx: Context, row: Alert, action: str, note: str | None = None
    ) -> None:
        self._audit.record(
            session,
            ctx,
            AuditEntry(
                action=action,
                resource_type="alert",
                resource_id=row.id,
                reason=note,
                details={
                    "name": row.name,
                    "fingerprint": row.fingerprint,
                    "labels": json.loads(row.labels),
                    "value": row.value,
                    "state": row.state,
                },
            ),
        )


def _alert(session: Session, alert_id: str, *, for_update: bool = False) -> Alert:
    row = session.get(Alert, alert_id, with_for_update=for_update)
    if row is None:
        msg = f"no alert {alert_id!r}"
        raise NotFoundError(msg)
    return row


def _end(row: Alert, now: datetime, user: str | None, note: str | None) -> None:
    row.state = "resolved"
    row.open_key = None
    row.resolved_at = now
    row.resolved_by = user or SYSTEM_ACTOR.username
    row.resolve_note = note
    row.updated_at = now


def _out(session: Session, row: Alert) -> AlertOut:
    sent = session.scalar(
        select(func.count())
        .select_from(AlertNotificationLink)
        .where(AlertNotificationLink.alert_id == row.id)
    )
    return AlertOut(
        id=row.id,
        fingerprint=row.fingerprint,
        name=row.name,
        deployment=row.deployment,
        severity=row.severity,
        team=row.team,
        state=row.state,
        labels=json.loads(row.labels),
        annotations=json.loads(row.annotations),
        value=row.value,
        evidence=row.evidence,
        silenced=row.silenced,
        inhibited=row.inhibited,
        started_at=row.started_at,
        firing_at=row.firing_at,
        acknowledged_at=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by,
        acknowledge_note=row.acknowledge_note,
        resolved_at=row.resolved_at,
        resolved_by=row.resolved_by,
        resolve_note=row.resolve_note,
        notifications=int(sent or 0),
    )
