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

from sqlalchemy import Integer, String, Text
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
