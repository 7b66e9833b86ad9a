"""Tables of the online side of the feature store: how far each view has been materialized
into the online store (the incremental state), and which deployments serve from feature views.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from medops.db.base import Base, UTCDateTime


class FeatureMaterialization(Base):
    """The incremental state of one view in one online store: every source row with a created
    time (else event time) at or before ``watermark`` has been written; the next run reads only
    the rows after it (minus the view's declared lateness)."""

    __tablename__ = "feature_materializations"

    view: Mapped[str] = mapped_column(String(64), primary_key=True)
    store: Mapped[str] = mapped_column(String(64), primary_key=True)  # the store's fingerprint
    definition_digest: Mapped[str] = mapped_column(String(71))  # the view as materialized
    watermark: Mapped[datetime | None] = mapped_column(UTCDateTime)
    runs: Mapped[int] = mapped_column(Integer, default=0)
    rows_read: Mapped[int] = mapped_column(Integer, default=0)  # the last run's
    rows_written: Mapped[int] = mapped_column(Integer, default=0)  # the last run's
    seconds: Mapped[float] = mapped_column(Float, default=0.0)  # the last run's
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(64))


class FeatureBinding(Base):
    """A deployment whose model's features come from feature views: the definitions it pins,
    which model input comes from which feature, and the missing/stale policy (JSON, a
    ``FeatureBindingSpec``)."""

    __tablename__ = "feature_bindings"

    deployment: Mapped[str] = mapped_column(String(64), primary_key=True)
    spec: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(71))
    revision: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(64))
