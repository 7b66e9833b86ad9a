"""Tables of change-control plans, their signatures, candidate reports and rollouts.

A plan version is immutable once proposed (its canonical JSON and hash never change); what
changes is its status (pending -> active -> superseded) as signatures complete it and a newer
plan replaces it. Candidate reports are stored whole (canonical JSON) with their hash; a
rollout row records where a within-plan candidate stands in the plan's protocol.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from medops.db.base import Base, UTCDateTime
from medops.registry.tables import SignedBy


class ChangeControlPlan(Base):
    """One version of a model's change-control plan (canonical JSON ``spec``)."""

    __tablename__ = "change_control_plans"
    __table_args__ = (
        UniqueConstraint("model_id", "number", name="uq_change_control_plans_number"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("registered_models.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # pending | active | superseded
    spec: Mapped[str] = mapped_column(Text)  # canonical JSON PlanSpec
    plan_hash: Mapped[str] = mapped_column(String(64))
    champion: Mapped[int | None] = mapped_column(Integer)  # production version at creation
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(64))
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PlanSignature(SignedBy, Base):
    """An electronic signature on a plan version, sealed like a version's approval: the
    manifest (signer, meaning, time, method, model, plan number and hash) is countersigned
    with the server's Ed25519 key."""

    __tablename__ = "change_control_plan_signatures"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("change_control_plans.id"), index=True)


class CandidateEvaluation(Base):
    """A candidate judged against a plan (the whole ``CandidateReport`` as canonical JSON)."""

    __tablename__ = "retraining_candidate_reports"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("registered_models.id"), index=True)
    version_id: Mapped[str] = mapped_column(ForeignKey("model_versions.id"), index=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("change_control_plans.id"))
    within_plan: Mapped[bool] = mapped_column(Boolean)
    report: Mapped[str] = mapped_column(Text)
    report_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    created_by: Mapped[str] = mapped_column(String(64))


class PlanRollout(Base):
    """A within-plan candidate's way through shadow and canary on one deployment."""

    __tablename__ = "retraining_rollouts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("registered_models.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    deployment: Mapped[str] = mapped_column(String(64), index=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("change_control_plans.id"))
    report_id: Mapped[str] = mapped_column(ForeignKey("retraining_candidate_reports.id"))
    state: Mapped[str] = mapped_column(String(16), index=True)
    step: Mapped[int | None] = mapped_column(Integer)
    phase_started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_by: Mapped[str] = mapped_column(String(64))
    reasons: Mapped[str] = mapped_column(Text)  # JSON list
    events: Mapped[str] = mapped_column(Text)  # JSON list of RolloutEvent
