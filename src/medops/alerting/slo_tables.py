"""Service-level objectives as versioned documents: every change a new row, none replaced."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from medops.db.base import Base, UTCDateTime


class SloObjectiveVersion(Base):
    """One version of the objectives of a deployment (or of every deployment: ``*``): the
    ``SloConfig`` document as canonical JSON, who set it and when. The newest version is in
    force; older ones stay for the record (each change is audited ``slo.set``)."""

    __tablename__ = "slo_objectives"

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)  # deployment or "*"
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    document: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(64))
