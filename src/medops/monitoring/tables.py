"""Tables of monitoring: the stored reference profile of each model version, the result of
every computed window (a time series per deployment, version and window kind), and each
deployment's monitoring configuration."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
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
            "deployment", "version", "window_kind", "sequence", name="uq_monitoring_window"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deployment: Mapped[str] = mapped_column(String(64), index=True)
    model_name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    window_kind: Mapped[str] = mapped_column(String(16))  # hour, day, week or count:N
    # The window's place in its series: for time windows the number of whole windows since
    # the Unix epoch (weeks since Monday 1970-01-05), for count windows its index in the log.
    sequence: Mapped[int] = mapped_column(BigInteger)
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
    # The numbers the console charts (monitoring/trend.py): their names as a JSON list and
    # the values as packed float32s. NULL on rows written before migration 0014's server.
    trend_keys: Mapped[str | None] = mapped_column(Text, nullable=True)
    trend: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class MonitoringConfiguration(Base):
    """How a deployment's windows are judged (``schemas.MonitoringConfig``); no row: the
    defaults. Every change is audited as ``monitoring.configure`` with before and after."""

    __tablename__ = "monitoring_configs"

    deployment: Mapped[str] = mapped_column(ForeignKey("deployments.name"), primary_key=True)
    thresholds: Mapped[str] = mapped_column(Text)  # JSON feature -> test -> threshold
    correction: Mapped[str] = mapped_column(String(16))
    thresholds_mode: Mapped[str] = mapped_column(String(16))
    min_samples: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(64))
