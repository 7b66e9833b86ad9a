"""Tables of lineage: edges between dataset versions and model versions, and the outbox of
OpenLineage events. Deployments, predictions and monitoring windows join the graph through
the tables that already record them (single source of truth), not through copies here."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from medops.db.base import Base, UTCDateTime


class LineageEdge(Base):
    """``source`` was used to make ``target`` as ``relation`` (derived, training, validation,
    reference, ...). Nodes are ``kind:id`` (``dataset_version:<id>``, ``model_version:<id>``)."""

    __tablename__ = "lineage_edges"
    __table_args__ = (
        UniqueConstraint(
            "source_kind",
            "source_id",
            "target_kind",
            "target_id",
            "relation",
            name="uq_lineage_edges_edge",
        ),
        Index("ix_lineage_edges_target", "target_kind", "target_id"),
        Index("ix_lineage_edges_source", "source_kind", "source_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source_kind: Mapped[str] = mapped_column(String(32))
    source_id: Mapped[str] = mapped_column(String(64))
    target_kind: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(64))
    relation: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(64))


class LineageEvent(Base):
    """An OpenLineage run event waiting to be sent (or sent): a durable outbox row."""

    __tablename__ = "lineage_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event: Mapped[str] = mapped_column(Text)  # the RunEvent as JSON
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
