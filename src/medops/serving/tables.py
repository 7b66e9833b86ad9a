"""Tables of the inference service: deployments, their history, predictions and outcomes.

A deployment is a named endpoint bound to a model reference (``name@alias`` or a pinned
version), with an optional canary and shadow version. Every change to a deployment is an
event row and an audit record in the same transaction. Predictions are append-only: one row
per scored record (shadow ones included), written with their audit records by group commit
before the response leaves; each row keeps its features as sent (JSON) and packed for
monitoring (``core/packed.py``). An outcome (the ground truth, known later) is a row of its own.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from medops.db.base import Base, UTCDateTime


class Deployment(Base):
    """A named prediction endpoint and how its traffic is routed now."""

    __tablename__ = "deployments"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("registered_models.id"), index=True)
    model_name: Mapped[str] = mapped_column(String(64))
    alias: Mapped[str | None] = mapped_column(String(64))  # follows name@alias, or
    version: Mapped[int | None] = mapped_column(Integer)  # is pinned to a version
    canary_version: Mapped[int | None] = mapped_column(Integer)
    canary_percent: Mapped[int] = mapped_column(Integer, default=0)
    shadow_version: Mapped[int | None] = mapped_column(Integer)
    cache_size: Mapped[int] = mapped_column(Integer, default=0)  # 0: no cache
    # Every prediction explained (feature contributions), as if each request asked for it.
    explain: Mapped[bool] = mapped_column(Boolean, default=False)
    max_error_rate: Mapped[float] = mapped_column(Float)
    max_p99_ms: Mapped[float] = mapped_column(Float)
    min_requests: Mapped[int] = mapped_column(Integer)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(64))


class DeploymentEvent(Base):
    """One change of a deployment (create, canary, shadow, rollback, auto-rollback, update)."""

    __tablename__ = "deployment_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployments.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    before: Mapped[str | None] = mapped_column(Text)  # JSON routing before
    after: Mapped[str] = mapped_column(Text)  # JSON routing after
    reason: Mapped[str | None] = mapped_column(String(500))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(64))


class Prediction(Base):
    """One scored record: what went in, what came out, by which version, for whom."""

    __tablename__ = "predictions"
    # Monitoring reads one deployment version's log, shadow rows left out, in time order
    # (windows by time, and count windows by key: occurred_at, then id); counts and the keys
    # of a count window come from the index alone.
    __table_args__ = (
        Index("ix_predictions_series", "deployment", "version", "shadow", "occurred_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    deployment: Mapped[str] = mapped_column(String(64), index=True)
    model_name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    artifact_digest: Mapped[str] = mapped_column(String(64))
    arm: Mapped[str] = mapped_column(String(8))  # primary | canary | shadow
    shadow: Mapped[bool] = mapped_column(Boolean)
    cached: Mapped[bool] = mapped_column(Boolean)
    requester: Mapped[str] = mapped_column(String(64))
    patient_ref: Mapped[str | None] = mapped_column(String(128), index=True)
    request_id: Mapped[str | None] = mapped_column(String(128))
    inputs: Mapped[str] = mapped_column(Text)  # JSON features as sent
    label: Mapped[str] = mapped_column(Text)  # JSON class label
    probabilities: Mapped[str] = mapped_column(Text)  # JSON {class: probability}
    latency_ms: Mapped[float] = mapped_column(Float)
    metadata_json: Mapped[str | None] = mapped_column("metadata", Text)
    # What monitoring reads (core/packed.py): the features packed as float64s in signature
    # order, and the positive class's probability. NULL on rows logged before migration 0013
    # (or a record that cannot be packed): readers then parse ``inputs``/``probabilities``.
    features: Mapped[bytes | None] = mapped_column(LargeBinary)
    score: Mapped[float | None] = mapped_column(Float)


class PredictionExplanation(Base):
    """What a clinician was shown of why: the feature contributions of one explained
    prediction, all of them (the answer shows the top ones), written with the prediction row
    and bound into the same audit record (``explanation_digest``)."""

    __tablename__ = "prediction_explanations"

    prediction_id: Mapped[str] = mapped_column(ForeignKey("predictions.id"), primary_key=True)
    method: Mapped[str] = mapped_column(String(16))  # linear | tree_shap | sampling_shapley
    exact: Mapped[bool] = mapped_column(Boolean)
    scale: Mapped[str] = mapped_column(String(16))  # log_odds | probability | raw
    base_value: Mapped[float] = mapped_column(Float)
    output: Mapped[float] = mapped_column(Float)
    error_estimate: Mapped[float | None] = mapped_column(Float)
    shown: Mapped[int] = mapped_column(Integer)  # how many (largest first) the answer showed
    contributions: Mapped[str] = mapped_column(Text)  # JSON [[feature, contribution], ...]


class Outcome(Base):
    """The ground truth for a prediction, attached later by a clinician or a service."""

    __tablename__ = "prediction_outcomes"

    prediction_id: Mapped[str] = mapped_column(ForeignKey("predictions.id"), primary_key=True)
    label: Mapped[str] = mapped_column(Text)  # JSON class label
    observed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    recorded_by: Mapped[str] = mapped_column(String(64))


class ServingUsage(Base):
    """What one server process (``replica``) did for one deployment in one minute: requests
    answered, server errors, sheds, client errors, a latency histogram, and the resources the
    work used. Each process adds its own rows (no contention between replicas); SLOs, alert
    rules and cost reports sum them over any span (``serving/usage.py``)."""

    __tablename__ = "serving_usage"

    deployment: Mapped[str] = mapped_column(String(64), primary_key=True)
    minute: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    replica: Mapped[str] = mapped_column(String(64), primary_key=True)
    requests: Mapped[int] = mapped_column(Integer, default=0)  # answered, any status
    errors: Mapped[int] = mapped_column(Integer, default=0)  # 5xx: failed on our side
    shed: Mapped[int] = mapped_column(Integer, default=0)  # 503 shed (counted in errors too)
    client_errors: Mapped[int] = mapped_column(Integer, default=0)  # 4xx: the caller's fault
    records: Mapped[int] = mapped_column(Integer, default=0)  # predictions scored
    # Requests per latency bucket (not cumulative), the bounds in usage.LATENCY_BOUNDS_MS and
    # one more for slower: JSON list of ints.
    latency: Mapped[str] = mapped_column(Text)
    latency_sum_ms: Mapped[float] = mapped_column(Float, default=0.0)
    cpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    gpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    memory_byte_seconds: Mapped[float] = mapped_column(Float, default=0.0)
