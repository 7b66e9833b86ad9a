"""Alerting's tables.

``alert_notifications`` is the outbox: the evaluator inserts one row per (group, transition,
level, receiver), its ``dedup_key`` unique, so several replicas evaluating the same transition
queue it once; the dispatcher claims a due row by moving ``claimed_until`` forward in one
conditional UPDATE (one replica wins), sends it, and marks it sent, or sets the next attempt
with exponential backoff. A row outlives restarts: what was queued is sent when a receiver comes
back.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from medops.db.base import Base, UTCDateTime


class AlertNotification(Base):
    """One notification to one receiver, queued until sent (or dead after its attempts)."""

    __tablename__ = "alert_notifications"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(255), unique=True)
    receiver: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # NotificationKind
    group_key: Mapped[str] = mapped_column(String(255), index=True)
    payload: Mapped[str] = mapped_column(Text)  # canonical JSON of NotificationPayload
    status: Mapped[str] = mapped_column(String(16), index=True)  # NotificationStatus
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))


class AlertDocument(Base):
    """One version of a versioned alerting document: a rule set (``kind`` "rules", ``scope``
    ``*`` or a deployment's name) or the routing configuration (``kind`` "config", ``scope``
    ``*``). Every version is kept; the newest of a (kind, scope) is in force."""

    __tablename__ = "alert_documents"
    __table_args__ = (
        UniqueConstraint("kind", "scope", "version", name="uq_alert_document_version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[str] = mapped_column(Text)  # canonical JSON of RuleSet or AlertingConfig
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(64))


class Alert(Base):
    """One alert's life, from pending to resolved. ``open_key`` holds the fingerprint while
    the alert is not resolved (NULL after), so one fingerprint has one open alert at most, on
    every backend; a resolved alert that fires again is a new row."""

    __tablename__ = "alerts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    open_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    deployment: Mapped[str | None] = mapped_column(String(64), index=True)
    severity: Mapped[str] = mapped_column(String(16))
    team: Mapped[str] = mapped_column(String(32))
    labels: Mapped[str] = mapped_column(Text)  # canonical JSON
    annotations: Mapped[str] = mapped_column(Text)  # canonical JSON
    value: Mapped[float | None] = mapped_column(Float)
    evidence: Mapped[str | None] = mapped_column(String(500))
    state: Mapped[str] = mapped_column(String(16), index=True)  # AlertState
    silenced: Mapped[bool] = mapped_column(Boolean, default=False)
    inhibited: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)  # pending since
    firing_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    acknowledge_note: Mapped[str | None] = mapped_column(String(500))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    resolve_note: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AlertSilence(Base):
    """Alerts whose labels satisfy ``matchers`` are not notified from ``starts_at`` to
    ``ends_at`` (or until expired by hand); they are still tracked."""

    __tablename__ = "alert_silences"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    matchers: Mapped[str] = mapped_column(Text)  # canonical JSON list of Matcher
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    author: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expired_by: Mapped[str | None] = mapped_column(String(64))


class AlertGroup(Base):
    """A notification group of the routing tree (route and values of its ``group_by``
    labels): when it was first seen and last notified, what it held then, and where its
    escalation stands. ``transitions`` numbers what was queued, into each ``dedup_key``."""

    __tablename__ = "alert_groups"

    group_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    receiver: Mapped[str | None] = mapped_column(String(64))
    escalation: Mapped[str | None] = mapped_column(String(64))
    group_labels: Mapped[str] = mapped_column(Text)  # canonical JSON
    state: Mapped[str] = mapped_column(String(16))  # firing | resolved
    alert_ids: Mapped[str] = mapped_column(Text)  # JSON list: the alerts last notified
    digest: Mapped[str | None] = mapped_column(String(64))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    transitions: Mapped[int] = mapped_column(Integer, default=0)
    level: Mapped[int] = mapped_column(Integer, default=0)
    round: Mapped[int] = mapped_column(Integer, default=0)
    next_escalation_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AlertNotificationLink(Base):
    """Which alerts a notification carried: how many notifications went out for an alert is
    a count over this table (the SLA report's incidents), not a search of payloads."""

    __tablename__ = "alert_notification_links"

    notification_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    alert_id: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)
