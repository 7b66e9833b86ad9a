"""Tables of the model registry.

A model version is immutable once registered: nothing in medops updates a ``model_versions``
row. What changes around it (its card, its reports, its approvals, the aliases pointing at it)
lives in tables of its own, and every change there is audited with before and after values.
JSON documents are stored as text with sorted keys, so their SHA-256 is stable.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from medops.db.base import Base, UTCDateTime


class RegisteredModel(Base):
    """A named model: the container of its versions, aliases and promotion policy."""

    __tablename__ = "registered_models"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    policy: Mapped[str] = mapped_column(Text)  # JSON PromotionPolicy
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(64))
    next_version: Mapped[int] = mapped_column(Integer, default=1)


class ModelVersion(Base):
    """One immutable version: the ONNX artifact (by digest), its signature and its lineage."""

    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),
        UniqueConstraint("model_id", "artifact_digest", name="uq_model_versions_model_digest"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("registered_models.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    artifact_digest: Mapped[str] = mapped_column(String(64))
    artifact_size: Mapped[int] = mapped_column(BigInteger)
    artifact_info: Mapped[str] = mapped_column(Text)  # JSON: opsets, producer, operators, io
    signature: Mapped[str] = mapped_column(Text)  # JSON ModelSignature
    framework: Mapped[str | None] = mapped_column(String(100))
    parity: Mapped[str | None] = mapped_column(Text)  # JSON: measured diff, tolerance, rows
    training_data: Mapped[str | None] = mapped_column(Text)  # JSON: uri, digest
    code_ref: Mapped[str | None] = mapped_column(Text)  # JSON: repository, commit
    hyperparameters: Mapped[str] = mapped_column(Text)
    training_metrics: Mapped[str] = mapped_column(Text)
    lineage: Mapped[str] = mapped_column(Text)
    tags: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("model_versions.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(64))


class ValidationReport(Base):
    """A validation report medops computed by running the version on a labeled dataset."""

    __tablename__ = "validation_reports"
    __table_args__ = (
        UniqueConstraint("version_id", "number", name="uq_validation_reports_version_number"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    version_id: Mapped[str] = mapped_column(ForeignKey("model_versions.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per version; the latest counts
    dataset_name: Mapped[str] = mapped_column(String(200))
    dataset_digest: Mapped[str] = mapped_column(String(64))
    dataset_rows: Mapped[int] = mapped_column(Integer)
    label_column: Mapped[str] = mapped_column(String(64))
    report: Mapped[str] = mapped_column(Text)  # JSON report
    report_hash: Mapped[str] = mapped_column(String(64))
    policy: Mapped[str] = mapped_column(Text)  # JSON policy it was judged under
    passed: Mapped[bool] = mapped_column(Boolean)
    failures: Mapped[str] = mapped_column(Text)  # JSON list of unmet thresholds
    auroc: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(64))


class ModelCard(Base):
    """The team-written part of a version's model card (the rest is filled from the version)."""

    __tablename__ = "model_cards"

    version_id: Mapped[str] = mapped_column(ForeignKey("model_versions.id"), primary_key=True)
    content: Mapped[str] = mapped_column(Text)  # JSON CardContent
    content_hash: Mapped[str] = mapped_column(String(64))
    revision: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(64))


class SignedBy:
    """The columns every electronic signature has: the signer as they signed (id, name,
    printed name, role), the meaning, a comment, how they re-authenticated and when, and the
    seal (manifest hash, server key id, countersignature)."""

    user_id: Mapped[str] = mapped_column(String(36))
    username: Mapped[str] = mapped_column(String(64))
    printed_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    meaning: Mapped[str] = mapped_column(String(32))
    comment: Mapped[str | None] = mapped_column(Text)
    method: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    manifest_hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(16))
    server_signature: Mapped[str] = mapped_column(String(128))


class Approval(SignedBy, Base):
    """An electronic signature on a version (21 CFR 11.50/11.70/11.200).

    The manifest binds the signer, meaning and time to the artifact digest, the report hash
    and the card hash; the server countersigns the manifest with its Ed25519 key, so a row
    edited in the database, or content changed after signing, no longer verifies."""

    __tablename__ = "model_approvals"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    version_id: Mapped[str] = mapped_column(ForeignKey("model_versions.id"), index=True)
    artifact_digest: Mapped[str] = mapped_column(String(64))
    report_id: Mapped[str] = mapped_column(String(32))
    report_hash: Mapped[str] = mapped_column(String(64))
    card_hash: Mapped[str] = mapped_column(String(64))
    policy_hash: Mapped[str] = mapped_column(String(64))


class ModelAlias(Base):
    """Where an alias (``production``, ``staging``, any name) of a model points now."""

    __tablename__ = "model_aliases"

    model_id: Mapped[str] = mapped_column(ForeignKey("registered_models.id"), primary_key=True)
    alias: Mapped[str] = mapped_column(String(64), primary_key=True)
    version_id: Mapped[str] = mapped_column(ForeignKey("model_versions.id"))
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(64))


class AliasEvent(Base):
    """One alias move: the history behind ``models history`` and ``show --at``."""

    __tablename__ = "model_alias_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("registered_models.id"), index=True)
    alias: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # promote | rollback | remove
    from_version: Mapped[int | None] = mapped_column(Integer)
    to_version: Mapped[int | None] = mapped_column(Integer)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(500))
    evidence: Mapped[str | None] = mapped_column(Text)  # JSON: report, approvals checked


class PolicyChange(Base):
    """A proposed change of a model's promotion policy that loosens it.

    It applies only once two people, one of them a clinician, have signed it, and only while
    the model still has the policy it was proposed against (``before_hash``)."""

    __tablename__ = "model_policy_changes"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("registered_models.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))  # pending | applied | withdrawn | superseded
    before_policy: Mapped[str] = mapped_column(Text)  # canonical JSON
    after_policy: Mapped[str] = mapped_column(Text)  # canonical JSON
    before_hash: Mapped[str] = mapped_column(String(64))
    after_hash: Mapped[str] = mapped_column(String(64))
    loosenings: Mapped[str] = mapped_column(Text)  # JSON list of sentences
    reason: Mapped[str] = mapped_column(String(500))
    proposed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    proposed_by: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(64))


class PolicySignature(SignedBy, Base):
    """An electronic signature on a policy change, sealed like a version's: the manifest
    (signer, meaning, time, method, the change and both policy hashes) is countersigned with
    the server's Ed25519 key."""

    __tablename__ = "model_policy_signatures"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    change_id: Mapped[str] = mapped_column(ForeignKey("model_policy_changes.id"), index=True)
