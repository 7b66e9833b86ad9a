"""A change-control plan and what is computed against it (pydantic, frozen data).

A ``PlanSpec`` is what the clinician and the ML engineer sign: what may change without a new
approval (retraining on new data of the same schema, hyperparameters within ranges, the
decision threshold within a range, model families), what may not (the input features, the
intended use, the population), the floors and subgroup limits a candidate must meet on the
plan's fixed evaluation set and on the newest labelled data, and the rollout protocol (shadow
for N predictions, canary steps, the monitoring verdicts that abort). Plans are stored as
canonical JSON and hashed; the signatures bind that hash.

A candidate's *family* is its version's tag ``model_family`` (else its ``framework``); its
*threshold* is its hyperparameter ``threshold`` (else 0.5).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from medops.auth.schemas import PASSWORD_FIELD
from medops.bounds import INT32_MAX, Int64, VersionNumber
from medops.registry.schemas import SignatureOut
from medops.serving.schemas import RolloutLimits

FAMILY_TAG = "model_family"
THRESHOLD_PARAMETER = "threshold"
DEFAULT_THRESHOLD = 0.5
MinMetric = Literal["auroc", "accuracy", "sensitivity", "specificity"]
GapMetric = Literal["auroc", "accuracy", "sensitivity", "specificity"]
Scalar = str | Int64 | float | bool


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataRef(_Frozen):
    """Labelled rows as CSV: a file of a dataset version (``dataset`` ``NAME@N`` and ``path``)
    or a file on the server (``path``) pinned by its ``sha256``."""

    dataset: str | None = Field(default=None, max_length=200)
    path: str = Field(min_length=1, max_length=1000)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")

    @model_validator(mode="after")
    def _pinned(self) -> Self:
        if self.dataset is None and self.sha256 is None:
            msg = "a server file must be pinned by its sha256 (or name a dataset version)"
            raise ValueError(msg)
        return self


class ParamRange(_Frozen):
    """Allowed values of one hyperparameter: a numeric interval or a list of choices."""

    low: float | None = None
    high: float | None = None
    choices: list[Scalar] | None = Field(default=None, max_length=100)

    def allows(self, value: object) -> bool:
        if self.choices is not None:
            return value in self.choices
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def describe(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"in [{low}, {high}]"


class AllowedChanges(_Frozen):
    """What a candidate may change without a new approval."""

    retrain_on_new_data: bool = True
    hyperparameters: dict[str, ParamRange] = Field(default_factory=dict)
    threshold_low: float = Field(default=DEFAULT_THRESHOLD, gt=0, lt=1)
    threshold_high: float = Field(default=DEFAULT_THRESHOLD, gt=0, lt=1)
    families: list[str] = Field(min_length=1, max_length=20)
    other_hyperparameters: Literal["fixed", "free"] = Field(
        default="fixed",
        description="fixed: a hyperparameter the plan does not list must equal the champion's",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.threshold_low > self.threshold_high:
            msg = "threshold_low is above threshold_high"
            raise ValueError(msg)
        return self


class FixedTerms(_Frozen):
    """What no candidate may change: the features (the champion's at creation when left
    empty), the intended use and the population."""

    intended_use: str = Field(min_length=1, max_length=2000)
    population: str = Field(min_length=1, max_length=2000)
    features: list[str] = Field(default_factory=list, max_length=1000)


class Floors(_Frozen):
    """Performance a candidate must show on each evaluation set, and how far below the
    champion its AUROC may lie (the lower end of DeLong's interval of the difference)."""

    minimum: dict[MinMetric, float] = Field(default_factory=dict)
    max_brier: float | None = Field(default=None, gt=0, le=1)
    auroc_non_inferiority_margin: float | None = Field(default=None, ge=0, le=0.5)


class SubgroupLimit(_Frozen):
    """The largest allowed |metric(group) - metric(all rows)| for the groups of one column,
    judged on groups of at least ``min_rows`` rows."""

    attribute: str = Field(min_length=1, max_length=200)
    metric: GapMetric = "sensitivity"
    max_gap: float = Field(gt=0, le=1)
    min_rows: int = Field(default=20, ge=2, le=INT32_MAX)


class EvaluationSpec(_Frozen):
    """The plan's fixed evaluation set, the label column, and how many recent labelled rows
    a judgement on the newest data needs."""

    fixed_set: DataRef
    label_column: str = Field(min_length=1, max_length=200)
    recent_min_rows: int = Field(default=50, ge=2, le=INT32_MAX)


class CanaryStep(_Frozen):
    """One canary step: this share of traffic for at least ``minutes`` and at least
    ``min_predictions`` canary predictions."""

    percent: int = Field(ge=1, le=100)
    minutes: float = Field(default=0, ge=0)
    min_predictions: int = Field(default=0, ge=0, le=INT32_MAX)


ABORT_VERDICTS = ("concept-drift", "covariate-shift-with-performance-drop")


class RolloutProtocol(_Frozen):
    """How a within-plan candidate is put in front of patients, and what stops it."""

    shadow_predictions: int = Field(default=100, ge=0, le=INT32_MAX)
    canary_steps: list[CanaryStep] = Field(min_length=1, max_length=20)
    abort_verdicts: list[str] = Field(default_factory=lambda: list(ABORT_VERDICTS))
    canary_min_auroc: float | None = Field(default=None, gt=0, le=1)
    canary_min_labelled: int = Field(default=30, ge=2, le=INT32_MAX)
    limits: RolloutLimits | None = None


class PlanSpec(_Frozen):
    """A change-control plan as proposed and signed."""

    description: str = Field(min_length=1, max_length=4000)
    allowed: AllowedChanges
    fixed: FixedTerms
    floors: Floors = Floors()
    subgroup_limits: list[SubgroupLimit] = Field(default_factory=list, max_length=50)
    evaluation: EvaluationSpec
    rollout: RolloutProtocol


class PlanSignRequest(BaseModel):
    """An electronic signature approving a plan: re-authentication and a comment."""

    model_config = ConfigDict(extra="forbid")

    password: str = PASSWORD_FIELD
    otp: str | None = Field(default=None, max_length=16)
    comment: str | None = Field(default=None, max_length=2000)


class PlanSignatureOut(SignatureOut):
    """A signature on a plan, with whether it still verifies."""


PlanStatus = Literal["pending", "active", "superseded"]


class PlanOut(BaseModel):
    """A plan version: its content and hash, the version it was written against, who signed
    it and what it still needs."""

    model: str
    number: int
    status: PlanStatus
    spec: PlanSpec
    plan_hash: str
    champion: int | None
    created_at: datetime
    created_by: str
    activated_at: datetime | None
    signatures: list[PlanSignatureOut]
    needs: list[str]


# -- challenger against champion -----------------------------------------------------------


class EvaluateRequest(_Frozen):
    """Judge a version against the active plan; ``recent`` is the newest labelled data."""

    recent: DataRef | None = None


class Comparison(_Frozen):
    """One paired comparison, candidate (a) against champion (b), from ``stats``."""

    metric: str
    test: Literal["delong", "mcnemar", "bootstrap"]
    candidate: float
    champion: float
    difference: float
    ci_low: float | None
    ci_high: float | None
    p_value: float | None


class SubgroupResult(_Frozen):
    """The candidate's (and the champion's) metric in one group against all rows."""

    attribute: str
    group: str
    rows: int
    metric: str
    candidate: float | None
    overall: float | None
    gap: float | None
    champion_gap: float | None
    max_gap: float
    within: bool


class DataEvaluation(_Frozen):
    """Both models on one evaluation set."""

    name: Literal["fixed", "recent"]
    source: DataRef
    sha256: str
    rows: int
    positives: int
    candidate_threshold: float
    champion_threshold: float | None
    candidate: dict[str, float | None]
    champion: dict[str, float | None] | None
    comparisons: list[Comparison]
    subgroups: list[SubgroupResult]


class Check(_Frozen):
    """One rule of the plan applied to the candidate."""

    rule: str
    passed: bool
    detail: str


class CandidateReport(_Frozen):
    """A candidate judged against the plan, the champion on the same rows; ``reasons`` lists
    every rule it breaks (empty when ``within_plan``)."""

    id: str
    model: str
    candidate: int
    champion: int | None
    plan: int
    plan_hash: str
    evaluations: list[DataEvaluation]
    checks: list[Check]
    within_plan: bool
    reasons: list[str]
    created_at: datetime
    created_by: str


# -- rollout ---------------------------------------------------------------------------------

RolloutState = Literal["shadow", "canary", "promoted", "aborted", "stopped"]


class RolloutStart(_Frozen):
    """Start taking a version through the plan's protocol on a deployment."""

    version: VersionNumber
    deployment: str = Field(min_length=1, max_length=64)


class RolloutEvent(_Frozen):
    """One step of a rollout as it happened."""

    at: datetime
    state: RolloutState
    step: int | None
    detail: str


class RolloutOut(BaseModel):
    """A rollout: where it stands and how it got there."""

    id: str
    model: str
    version: int
    deployment: str
    plan: int
    report: str
    state: RolloutState
    step: int | None
    phase_started_at: datetime
    started_at: datetime
    started_by: str
    reasons: list[str]
    events: list[RolloutEvent]
