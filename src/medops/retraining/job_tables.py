"""Training's tables.

``training_specs`` keeps every version of a model's training specification.
``training_runs`` holds one row per run, its pinned data and record; ``training_active`` holds
one row per model while a run of it is queued or running: its primary key is what makes
retraining one-at-a-time per model on PostgreSQL and SQLite alike (a second request's INSERT
is refused by the database, however many replicas ask at once). ``training_triggers`` and
``training_trigger_events`` hold the triggers and every firing (fired or deduplicated).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from medops.db.base import Base, UTCDateTime


class TrainingSpecVersion(Base):
    """One version of a model's training specification (JSON ``TrainingSpec``)."""

    __tablename__ = "training_specs"

    model: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    spec: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(64))


class TrainingRun(Base):
    """One training run of a model."""

    __tablename__ = "training_runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16))  # RunStatus
    reason: Mapped[str] = mapped_column(Text)
    trigger_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    spec_version: Mapped[int] = mapped_column(Integer)
    spec: Mapped[str] = mapped_column(Text)  # the TrainingSpec the run was asked with
    dataset: Mapped[str] = mapped_column(String(128))  # NAME@N
    dataset_root: Mapped[str] = mapped_column(String(80))
    parameters: Mapped[str] = mapped_column(Text)  # JSON
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    requested_by: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    started_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    candidate_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    code_commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    environment: Mapped[str] = mapped_column(Text, default="{}")  # JSON
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    mlflow_run: Mapped[str | None] = mapped_column(String(200), nullable=True)
    logs: Mapped[str] = mapped_column(Text, default="")
    candidate_report: Mapped[str | None] = mapped_column(String(64), nullable=True)
    within_plan: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    rollout: Mapped[str | None] = mapped_column(String(64), nullable=True)
    rollout_state: Mapped[str | None] = mapped_column(String(16), nullable=True)


class TrainingActive(Base):
    """The model's one queued or running run (see the module)."""

    __tablename__ = "training_active"

    model: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(32))


class TrainingTrigger(Base):
    """A trigger's definition (JSON ``TriggerIn``) and state."""

    __tablename__ = "training_triggers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    definition: Mapped[str] = mapped_column(Text)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(64))
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class TrainingTriggerEvent(Base):
    """One firing of a trigger (or a person's request): fired, deduplicated or failed."""

    __tablename__ = "training_trigger_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trigger_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    model: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(16))
    run_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    detail: Mapped[str] = mapped_column(Text)
