"""Notification groups, their timers and escalation, and the outbox rows they queue.

Each evaluation hands the notifiable alerts (firing or acknowledged, neither silenced nor
inhibited) to ``Notifier.run``. Alerts are routed (``routing.py``) and grouped by their route
and its ``group_by`` labels. Per group, as Alertmanager: a new group waits ``group_wait``
before its first notification; a changed group (alerts joined or left) is notified again no
sooner than ``group_interval`` after the last; an unchanged firing group is notified again
after ``repeat_interval`` (not while every alert in it is acknowledged); a group whose alerts
all ended gets one ``resolved`` notification. As PagerDuty: a route naming an escalation
policy pages level 0 with the first notification; while not every alert of the group is
acknowledged, each level's ``after_minutes`` later the next level is paged (``escalation``),
the whole policy ``repeat`` more times; an acknowledgement stops it.

Every notification is a row of ``alert_notifications`` whose ``dedup_key`` is
``group_key|kind|level|receiver|transition``: inserted with ON CONFLICT DO NOTHING, so two
replicas queuing the same transition queue one row. The group row is read FOR UPDATE, so a
second evaluator sees what the first did.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from medops.alerting.routing import Leaf, route
from medops.alerting.schedules import contact, on_call
from medops.alerting.schemas import (
    AlertingConfig,
    EscalationLevel,
    NotificationAlert,
    NotificationKind,
    NotificationPayload,
)
from medops.alerting.tables import (
    Alert,
    AlertGroup,
    AlertNotification,
    AlertNotificationLink,
)
from medops.core.canonical import canonical_json, sha256_json

FIRING = ("firing", "acknowledged")


@dataclass
class _Group:
    leaf: Leaf
    labels: dict[str, str]
    alerts: list[Alert] = field(default_factory=list)


def notification_alert(alert: Alert) -> NotificationAlert:
    """An alert as a notification carries it: rule, labels, value, times, evidence path."""
    return NotificationAlert(
        id=alert.id,
        fingerprint=alert.fingerprint,
        name=alert.name,
        state=alert.state,
        severity=alert.severity,
        labels=json.loads(alert.labels),
        annotations=json.loads(alert.annotations),
        value=alert.value,
        starts_at=alert.firing_at or alert.started_at,
        ends_at=alert.resolved_at,
        evidence=alert.evidence,
    )


class Notifier:
    """Runs the groups of one evaluation, in the evaluator's transaction."""

    def __init__(self, session: Session, config: AlertingConfig, now: datetime) -> None:
        self._session = session
        self._config = config
        self._now = now
        self._receivers = {r.name for r in config.receivers}
        self._policies = {p.name: p for p in config.escalation_policies}
        self._schedules = {s.name: s for s in config.schedules}
        self.queued = 0

    def run(self, notifiable: Sequence[Alert]) -> int:
        """Group ``notifiable``, notify what is due; returns how many rows were queued."""
        groups: dict[str, _Group] = {}
        for alert in notifiable:
            labels = json.loads(alert.labels)
            for leaf in route(self._config, labels):
                key = leaf.group_key(labels)
                groups.setdefault(key, _Group(leaf, leaf.group_labels(labels))).alerts.append(alert)
        for key in sorted(groups):
            self._firing(key, groups[key])
        query = select(AlertGroup).where(AlertGroup.state == "firing")
        if groups:
            query = query.where(AlertGroup.group_key.not_in(list(groups)))
        stale = list(self._session.scalars(query.with_for_update()))
        for row in stale:
            self._resolved(row)
        return self.queued

    def _firing(self, key: str, group: _Group) -> None:
        now = self._now
        leaf = group.leaf
        row = self._session.get(AlertGroup, key, with_for_update=True, populate_existing=True)
        if row is None:
            row = AlertGroup(group_key=key, transitions=0)
            self._session.add(row)
        if row.state != "firing":
            row.receiver = leaf.receiver
            row.escalation = leaf.escalation
            row.group_labels = canonical_json(group.labels)
            row.state = "firing"
            row.alert_ids = "[]"
            row.digest = None
            row.first_seen_at = now
            row.last_notified_at = None
            row.level = 0
            row.round = 0
            row.next_escalation_at = None
            row.transitions = row.transitions or 0
        row.updated_at = now
        ids = sorted(alert.id for alert in group.alerts)
        digest = sha256_json(ids)
        acked = all(alert.state == "acknowledged" for alert in group.alerts)
        kind: NotificationKind | None = None
        if row.last_notified_at is None:
            if now >= row.first_seen_at + timedelta(seconds=leaf.group_wait_seconds):
                kind = "firing"
        elif digest != row.digest:
            if now >= row.last_notified_at + timedelta(seconds=leaf.group_interval_seconds):
                kind = "firing"
        elif not acked and now >= row.last_notified_at + timedelta(
            seconds=leaf.repeat_interval_seconds
        ):
            kind = "repeat"
        alerts = sorted(group.alerts, key=lambda a: (a.name, a.fingerprint))
        if kind is not None:
            first = row.last_notified_at is None
            row.transitions += 1
            row.last_notified_at = now
            row.digest = digest
            row.alert_ids = json.dumps(ids)
            self._queue(row, kind, 0, leaf.receiver, alerts, group.labels)
            policy = self._policies.get(leaf.escalation or "")
            if first and policy is not None and not acked:
                self._page(row, policy.levels[0], 0, "firing", alerts, group.labels)
                row.next_escalation_at = now + timedelta(minutes=policy.levels[0].after_minutes)
        if acked:
            row.next_escalation_at = None
        elif row.next_escalation_at is not None and now >= row.next_escalation_at:
            self._escalate(row, alerts, group.labels)

    def _escalate(self, row: AlertGroup, alerts: list[Alert], labels: dict[str, str]) -> None:
        policy = self._policies.get(row.escalation or "")
        if policy is None:
            row.next_escalation_at = None
            return
        level, rounds = row.level + 1, row.round
        if level >= len(policy.levels):
            if rounds >= policy.repeat:
                row.next_escalation_at = None
                return
            level, rounds = 0, rounds + 1
        row.level, row.round = level, rounds
        row.transitions += 1
        step = policy.levels[level]
        self._page(row, step, level, "escalation", alerts, labels)
        row.next_escalation_at = self._now + timedelta(minutes=step.after_minutes)

    def _page(
        self,
        row: AlertGroup,
        step: EscalationLevel,
        level: int,
        kind: NotificationKind,
        alerts: list[Alert],
        labels: dict[str, str],
    ) -> None:
        oncall = oncall_contact = None
        schedule = self._schedules.get(step.schedule or "")
        if schedule is not None:
            oncall = on_call(schedule, self._now)
            oncall_contact = contact(schedule, oncall)
        for receiver in step.receivers:
            self._queue(row, kind, level, receiver, alerts, labels, oncall, oncall_contact)

    def _resolved(self, row: AlertGroup) -> None:
        row.state = "resolved"
        row.next_escalation_at = None
        row.updated_at = self._now
        if row.last_notified_at is None:
            return
        ids = json.loads(row.alert_ids)
        alerts = list(self._session.scalars(select(Alert).where(Alert.id.in_(ids))))
        alerts.sort(key=lambda a: (a.name, a.fingerprint))
        labels = json.loads(row.group_labels)
        row.transitions += 1
        self._queue(row, "resolved", 0, row.receiver, alerts, labels)
        policy = self._policies.get(row.escalation or "")
        if policy is not None:  # whoever was paged hears it ended
            paged = {r for step in policy.levels[: row.level + 1] for r in step.receivers}
            if row.round > 0:
                paged = {r for step in policy.levels for r in step.receivers}
            for receiver in sorted(paged - {row.receiver}):
                self._queue(row, "resolved", 0, receiver, alerts, labels)
        row.alert_ids = "[]"

    def _queue(
        self,
        row: AlertGroup,
        kind: NotificationKind,
        level: int,
        receiver: str | None,
        alerts: list[Alert],
        labels: dict[str, str],
        oncall: str | None = None,
        oncall_contact: str | None = None,
    ) -> None:
        if receiver is None or receiver not in self._receivers:
            return
        payload = NotificationPayload(
            group_key=row.group_key,
            receiver=receiver,
            kind=kind,
            status="resolved" if kind == "resolved" else "firing",
            level=level,
            oncall=oncall,
            oncall_contact=oncall_contact,
            group_labels=labels,
            alerts=[notification_alert(alert) for alert in alerts],
            created_at=self._now,
        )
        dedup_key = f"{row.group_key}|{kind}|{level}|{receiver}|{row.transitions}"
        notification_id = uuid.uuid4().hex
        insert = (
            sqlite_insert
            if self._session.get_bind().dialect.name == "sqlite"
            else postgresql_insert
        )
        done = self._session.execute(
            insert(AlertNotification)
            .values(
                id=notification_id,
                dedup_key=dedup_key,
                receiver=receiver,
                kind=kind,
                group_key=row.group_key,
                payload=canonical_json(payload.model_dump(mode="json")),
                status="queued",
                attempts=0,
                next_attempt_at=self._now,
                created_at=self._now,
            )
            .on_conflict_do_nothing(index_elements=["dedup_key"])
            .returning(AlertNotification.id)
        )
        if done.first() is None:  # no row back: another evaluator queued it
            return
        self.queued += 1
        self._session.add_all(
            AlertNotificationLink(notification_id=notification_id, alert_id=alert.id)
            for alert in alerts
        )
