"""Tables of monitoring: the stored reference profile of each model version, and the result
of every computed window (a time series per deployment, version and window kind)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from medops.db.base import Base, UTCDateTime


class MonitoringProfile(Base):
    """A version's reference profile, built once from its validation data and kept."""

    __tablename__ = "monitoring_profiles"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    version_id: Mapped[str] = mapped_column(ForeignKey("model_versions.id"), unique=True)
    report_id: Mapped[str] = mapped_column(ForeignKey("validation_reports.id"))
    profile: Mapped[str] = mapped_column(Text)  # JSON ReferenceProfile
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MonitoringResult(Base):
    """One computed window of one deployment's version: the full monitoring document."""

    __tablename__ = "monitoring_results"
    __table_args__ = (
        UniqueConstraint(
            "deployment", "version", "window_kind", "window_start", name="uq_monitoring_window"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deployment: Mapped[str] = mapped_column(String(64), index=True)
    model_name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    window_kind: Mapped[str] = mapped_column(String(8))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime)
    rows: Mapped[int] = mapped_column(Integer)
    labelled: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32))
    verdict: Mapped[str] = mapped_column(String(64))
    drifted: Mapped[bool] = mapped_column(Boolean)
    alerts: Mapped[str] = mapped_column(Text)  # JSON list of messages
    result: Mapped[str] = mapped_column(Text)  # JSON document (monitoring/evaluate.py)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
