"""The registry of feature definitions: every version of every entity, feature view, on-demand
feature and feature service, none replaced (a changed definition is a new row)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from medops.db.base import Base, UTCDateTime


class FeatureDefinition(Base):
    """One version of a definition: its spec as canonical JSON and the spec's digest (equal
    specs, equal digests: applying an unchanged file adds nothing), owner and description
    copied out for listing, who applied it and when (audited ``features.apply``)."""

    __tablename__ = "feature_definitions"
    __table_args__ = (
        UniqueConstraint("kind", "name", "version", name="uq_feature_definitions_version"),
        Index("ix_feature_definitions_kind_name", "kind", "name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(71))
    spec: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(64))
