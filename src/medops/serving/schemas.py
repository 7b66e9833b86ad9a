"""Input and output shapes of the inference service."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from medops.bounds import Int64, VersionNumber
from medops.registry.schemas import MODEL_NAME_PATTERN

DEPLOYMENT_NAME_PATTERN = MODEL_NAME_PATTERN
PATIENT_REF_MAX = 128
LOOKBACK_DAYS_DEFAULT = 30.0
LOOKBACK_DAYS_MAX = 3650.0
ClassLabel = Int64 | Annotated[str, Field(max_length=200)] | bool


def patient_ref_problem(value: str) -> str | None:
    """Why ``value`` cannot be a patient reference (as the predict path takes them), or None."""
    if not 1 <= len(value) <= PATIENT_REF_MAX or not value.isprintable() or value != value.strip():
        return f"must be a printable string of 1 to {PATIENT_REF_MAX} characters"
    return None


class RolloutLimits(BaseModel):
    """When a canary is rolled back automatically: its error rate or its p99 latency over
    the last ``min_requests`` canary records crossing these limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_error_rate: float = Field(default=0.01, ge=0, le=1)
    max_p99_ms: float = Field(default=500.0, gt=0, le=60_000)
    min_requests: int = Field(default=100, ge=1, le=10_000)


class DeploymentCreate(BaseModel):
    """A new endpoint bound to ``model``: ``name@alias`` (followed) or ``name/N`` (pinned)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=DEPLOYMENT_NAME_PATTERN)
    model: str = Field(min_length=1, max_length=140, description="name@alias or name/VERSION")
    cache_size: int = Field(default=0, ge=0, le=1_000_000, description="0 turns the cache off")
    limits: RolloutLimits = Field(default_factory=RolloutLimits)
    explain: bool = Field(
        default=False, description="explain every prediction (feature contributions), asked or not"
    )
    reason: str = Field(default="created", min_length=3, max_length=500)


class CanaryRequest(BaseModel):
    """Send ``percent`` of records (sticky per patient reference) to ``version``;
    ``percent`` 0 ends the canary."""

    model_config = ConfigDict(extra="forbid")

    version: VersionNumber | None = None
    percent: int = Field(ge=0, le=100)
    limits: RolloutLimits | None = None
    reason: str = Field(min_length=3, max_length=500)


class ShadowRequest(BaseModel):
    """Score a copy of every record with ``version`` (logged, never returned); None stops."""

    model_config = ConfigDict(extra="forbid")

    version: VersionNumber | None = None
    reason: str = Field(min_length=3, max_length=500)


class ExplainRequest(BaseModel):
    """Explain every prediction of the deployment (``always`` true), or only those whose
    request asks with ``"explain": true``."""

    model_config = ConfigDict(extra="forbid")

    always: bool
    reason: str = Field(min_length=3, max_length=500)


class ContributionOut(BaseModel):
    """One feature's contribution to a logged prediction (on the explanation's scale)."""

    feature: str
    value: Any = Field(description="the feature's value as sent")
    contribution: float
    direction: str = Field(description="increases, decreases or none")
    shown: bool = Field(description="among the contributions the answer showed")


class ExplanationOut(BaseModel):
    """What the prediction log holds of an explained prediction: every feature's
    contribution, largest first, and which of them the answer showed."""

    prediction_id: str
    deployment: str
    model: str
    version: int
    occurred_at: datetime
    method: str = Field(description="linear, tree_shap or sampling_shapley")
    exact: bool
    scale: str = Field(description="log_odds, probability or raw")
    base_value: float
    output: float = Field(description="base_value plus every contribution")
    error_estimate: float | None
    score: float | None = Field(description="the positive class's probability")
    contributions: list[ContributionOut]
    audited: bool = Field(
        description="the stored explanation matches the digest in the prediction's audit record"
    )


class DeploymentRollbackRequest(BaseModel):
    """End the canary at once; with no canary, move the deployment's target back."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=3, max_length=500)


class ArmStats(BaseModel):
    """What this server process saw of one arm since it loaded it."""

    records: int
    errors: int
    error_rate: float | None
    p50_ms: float | None
    p99_ms: float | None
    rate_per_second: float | None = Field(
        default=None, description="records per second over the last five minutes"
    )


class DeploymentOut(BaseModel):
    """A deployment: its binding, the versions it serves now, and live figures."""

    name: str
    model: str
    target: str
    alias: str | None
    pinned_version: int | None
    version: int | None = Field(description="the version the target resolves to now")
    canary_version: int | None
    canary_percent: int
    shadow_version: int | None
    cache_size: int
    limits: RolloutLimits
    explain: bool = Field(default=False, description="every prediction explained")
    revision: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    live: dict[str, ArmStats] = Field(default_factory=dict)


class DeploymentEventOut(BaseModel):
    """One change of a deployment."""

    id: int
    kind: str
    before: dict[str, Any] | None
    after: dict[str, Any]
    reason: str | None
    occurred_at: datetime
    actor: str


class OutcomeIn(BaseModel):
    """The ground truth for one prediction."""

    model_config = ConfigDict(extra="forbid")

    label: ClassLabel
    observed_at: AwareDatetime | None = Field(
        default=None,
        description="When the outcome was observed (with a time zone): not before the "
        "prediction, not later than the server's now plus 5 minutes.",
    )


class OutcomeMatchIn(BaseModel):
    """The ground truth for a patient's prediction on a deployment, found by time: the
    latest non-shadow prediction of ``patient_ref`` at or before ``observed_at`` within
    ``lookback_days``, or the latest within ``predicted_from``..``predicted_to``."""

    model_config = ConfigDict(extra="forbid")

    patient_ref: str = Field(min_length=1, max_length=PATIENT_REF_MAX)
    label: ClassLabel
    observed_at: AwareDatetime | None = Field(
        default=None,
        description="When the outcome was observed (with a time zone); the prediction is the "
        "latest at or before it within lookback_days.",
    )
    predicted_from: AwareDatetime | None = Field(
        default=None, description="Start of the window the prediction was made in (inclusive)."
    )
    predicted_to: AwareDatetime | None = Field(
        default=None,
        description="End of the window the prediction was made in (inclusive; default "
        "observed_at).",
    )
    lookback_days: float = Field(
        default=LOOKBACK_DAYS_DEFAULT,
        gt=0,
        le=LOOKBACK_DAYS_MAX,
        description="How far before observed_at (or predicted_to) a prediction may lie, "
        "when predicted_from is not given.",
    )

    @field_validator("patient_ref")
    @classmethod
    def _printable(cls, value: str) -> str:
        problem = patient_ref_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


class PredictLimits(BaseModel):
    """What one predict request to a deployment may hold: send larger inputs in batches."""

    deployment: str
    max_records: int = Field(description="most records one request may hold")
    max_request_bytes: int = Field(description="largest request body, in bytes")
    features: list[str] = Field(
        description="the feature names each record needs (of the primary version, and of "
        "the canary when it has others)"
    )


class OutcomeOut(BaseModel):
    """An outcome as stored."""

    prediction_id: str
    label: ClassLabel
    observed_at: datetime | None
    recorded_at: datetime
    recorded_by: str
    created: bool = Field(description="false when the same outcome was already recorded")


class OutcomeUploadOut(BaseModel):
    """What a bulk outcome upload did."""

    rows: int
    created: int
    unchanged: int
    matched: int = Field(
        default=0, description="rows whose prediction was found by patient reference and time"
    )
