"""Input and output shapes of the model registry."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from medops.auth.schemas import PASSWORD_FIELD
from medops.bounds import VersionNumber
from medops.core.permissions import Role
from medops.core.signature import ModelSignature
from medops.errors import clip
from medops.registry.validation_report import ReportDocument

MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
ALIAS_PATTERN = r"^[a-z][a-z0-9_\-]{0,63}$"
DIGEST_PATTERN = r"^[0-9a-f]{64}$"
Meaning = Literal["review", "approval", "responsibility"]
# What a signer declares by each meaning (21 CFR 11.50: the meaning of a signature is shown
# with it); the console shows the statement before the signer signs.
MEANING_STATEMENTS: dict[str, str] = {
    "review": "I have reviewed this version, its validation report and its model card.",
    "approval": (
        "I approve this version for the intended use stated in its model card, on the "
        "evidence of its validation report; my approval counts toward the promotion gates."
    ),
    "responsibility": (
        "I take responsibility for this version's use in clinical care as stated in its model card."
    ),
}
PRODUCTION = "production"
MIN_CLINICIAN_APPROVALS = 1
GapMetric = Literal["auroc", "auprc", "accuracy", "sensitivity", "specificity", "ppv", "npv", "f1"]


class PromotionPolicy(BaseModel):
    """What a version must show before a protected alias may point at it.

    Thresholds compare the point estimates of the latest validation report; ``None`` turns
    a check off. ``required_approvals`` counts valid ``approval`` signatures per role."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    protected_aliases: list[str] = Field(default_factory=lambda: ["production"], max_length=20)
    min_auroc: float | None = Field(default=0.70, ge=0, le=1)
    min_auprc: float | None = Field(default=None, ge=0, le=1)
    min_sensitivity: float | None = Field(default=None, ge=0, le=1)
    min_specificity: float | None = Field(default=None, ge=0, le=1)
    max_ece: float | None = Field(default=0.10, ge=0, le=1)
    max_brier: float | None = Field(default=None, ge=0, le=1)
    max_subgroup_gap: float | None = Field(
        default=0.10, ge=0, le=1, description="Largest |subgroup - overall| of gap_metric."
    )
    gap_metric: GapMetric = "auroc"
    gap_judged_by: Literal["estimate", "interval"] = Field(
        default="estimate",
        description=(
            "estimate: a group fails when its point gap exceeds max_subgroup_gap; interval: "
            "only when the whole interval of its gap lies beyond it (strong evidence of a gap)."
        ),
    )
    require_parity: bool = True
    require_complete_card: bool = True
    required_approvals: dict[Role, Annotated[int, Field(ge=0, le=10)]] = Field(
        default_factory=lambda: {Role.CLINICIAN: 1, Role.ML_ENGINEER: 1}
    )

    @field_validator("protected_aliases")
    @classmethod
    def _aliases(cls, value: list[str]) -> list[str]:
        if PRODUCTION not in value:
            msg = f"{PRODUCTION!r} is always a protected alias"
            raise ValueError(msg)
        for alias in value:
            if not re.fullmatch(ALIAS_PATTERN, alias):
                msg = f"alias {clip(alias)!r} must match {ALIAS_PATTERN}"
                raise ValueError(msg)
        return sorted(set(value))

    @field_validator("required_approvals")
    @classmethod
    def _counts(cls, value: dict[Role, int]) -> dict[Role, int]:
        # Each count is 0 to 10 (the field's type). The floor no policy can go below: a
        # clinician and one more person sign, so one person can never put a model in front of
        # patients alone.
        if value.get(Role.CLINICIAN, 0) < MIN_CLINICIAN_APPROVALS or sum(value.values()) < 2:
            msg = "a policy needs at least one clinician approval and two approvals in all"
            raise ValueError(msg)
        return value


class ModelCreate(BaseModel):
    """A new registered model."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=MODEL_NAME_PATTERN)
    description: str | None = Field(default=None, max_length=10_000)
    policy: PromotionPolicy = Field(default_factory=PromotionPolicy)


class ModelOut(BaseModel):
    """A registered model with its aliases."""

    name: str
    description: str | None
    policy: PromotionPolicy
    created_at: datetime
    created_by: str
    latest_version: int | None
    aliases: dict[str, int]


class DataReference(BaseModel):
    """Training data by URI and content digest, unchecked: how versions registered before
    dataset versions existed name their data (still accepted, with a warning). A version
    pinned to a dataset version shows it here as ``medops:dataset/NAME@N`` with the version's
    Merkle root as the digest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    uri: str = Field(min_length=1, max_length=2000)
    digest: str | None = Field(default=None, pattern=DIGEST_PATTERN)
    description: str | None = Field(default=None, max_length=2000)


class DatasetPin(BaseModel):
    """Data pinned to a dataset version: ``NAME@VERSION`` (a number, ``latest`` or a root
    prefix), checked to exist and not to be deleted when the version is registered."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str = Field(min_length=1, max_length=200, examples=["icu-vitals@3"])
    description: str | None = Field(default=None, max_length=2000)


class CodeReference(BaseModel):
    """The code that trained the version: repository and commit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    repository: str | None = Field(default=None, max_length=2000)
    commit: str = Field(pattern=r"^[0-9a-f]{7,64}$")
    path: str | None = Field(default=None, max_length=500)


class ParityEvidenceIn(BaseModel):
    """A sample the native model ran on and its probabilities; the server runs the ONNX
    artifact on the same rows and measures the difference itself."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    columns: dict[str, list[Any]]
    native_probabilities: list[list[float]] = Field(min_length=1, max_length=10_000)
    tolerance: float = Field(default=1e-4, gt=0, le=0.1)
    client_max_abs_diff: float | None = Field(default=None, ge=0)


class VersionCreate(BaseModel):
    """Everything of a version but its artifact (sent alongside as a file)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    signature: ModelSignature
    framework: str | None = Field(default=None, max_length=100)
    description: str | None = Field(default=None, max_length=10_000)
    training_data: DatasetPin | DataReference | None = Field(
        default=None,
        description="{'dataset': NAME@VERSION} pins a dataset version (checked); "
        "{'uri': ..., 'digest': ...} is the older unchecked form",
    )
    validation_data: DatasetPin | None = None
    reference_data: DatasetPin | None = None
    code: CodeReference | None = None
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    training_metrics: dict[str, float] = Field(default_factory=dict)
    lineage: dict[str, Any] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    parity: ParityEvidenceIn | None = None

    def pins(self) -> list[tuple[Literal["training", "validation", "reference"], DatasetPin]]:
        """The dataset versions this registration pins, by role."""
        found: list[tuple[Literal["training", "validation", "reference"], DatasetPin]] = []
        if isinstance(self.training_data, DatasetPin):
            found.append(("training", self.training_data))
        if self.validation_data is not None:
            found.append(("validation", self.validation_data))
        if self.reference_data is not None:
            found.append(("reference", self.reference_data))
        return found

    @model_validator(mode="after")
    def _storable(self) -> Self:
        """Only finite numbers and no NUL characters: what every database and JSON reader
        takes back (free-form fields such as hyperparameters are checked here too)."""
        try:
            text = json.dumps(self.model_dump(), allow_nan=False, default=str)
        except ValueError:
            msg = "NaN and infinite numbers cannot be stored; give finite numbers or leave them out"
            raise ValueError(msg) from None
        if "\\u0000" in text:
            msg = "text must not contain NUL characters"
            raise ValueError(msg)
        return self


class ParityOut(BaseModel):
    """The parity check as the server measured it."""

    max_abs_diff: float
    tolerance: float
    rows: int
    label_agreement: float
    client_max_abs_diff: float | None


class VersionOut(BaseModel):
    """One immutable model version."""

    model: str
    version: int
    ref: str
    artifact_digest: str
    artifact_size: int
    artifact: dict[str, Any]
    signature: ModelSignature
    framework: str | None
    parity: ParityOut | None
    training_data: DataReference | None
    code: CodeReference | None
    hyperparameters: dict[str, Any]
    training_metrics: dict[str, float]
    lineage: dict[str, Any]
    tags: dict[str, str]
    description: str | None
    parent: str | None
    created_at: datetime
    created_by: str
    aliases: list[str]
    status: str
    warnings: list[str] = Field(
        default_factory=list,
        description="at registration: what the promotion gates will need that the version lacks",
    )


# Largest |parent - INT8| class probability a quantized version may show on the evaluation
# rows, unless the caller gives another (at most 0.1, as for parity with a native model).
QUANTIZE_TOLERANCE = 0.02
QUANTIZATION_METHOD = "ONNX Runtime dynamic INT8 quantization (QInt8 weights)"


class QuantizationReport(BaseModel):
    """An INT8 version measured against its parent on labeled evaluation rows; kept as the
    ``quantization`` key of the version's lineage. Latencies are the median of interleaved
    runs of one batch of every row on one CPU thread of the server; accuracy is at threshold
    0.5; a ``*_change`` is INT8 minus parent."""

    method: str
    onnxruntime: str
    parent: str  # NAME/VERSION
    parent_digest: str
    quantized_ops: list[str]
    dataset_name: str
    dataset_digest: str
    label_column: str
    rows: int
    parent_size: int  # bytes
    size: int
    parent_us_per_row: float
    us_per_row: float
    speedup: float  # parent latency / INT8 latency (> 1: faster)
    max_probability_diff: float
    tolerance: float
    label_agreement: float
    parent_accuracy: float | None
    accuracy: float | None
    accuracy_change: float | None
    parent_auroc: float | None
    auroc: float | None
    auroc_change: float | None


class QuantizedVersionOut(VersionOut):
    """The version a quantization created, with its report (also in ``lineage``)."""

    quantization: QuantizationReport


class PinnedValidation(BaseModel):
    """Validation re-run from a file of a pinned dataset version, read on the server."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(min_length=3, max_length=200, description="NAME@VERSION")
    path: str = Field(min_length=1, max_length=4096, description="a CSV file of the version")
    label: str = Field(min_length=1, max_length=64, description="the label column")
    threshold: float = Field(default=0.5, gt=0, lt=1)
    bootstrap: int = Field(default=1000, ge=0, le=10_000)
    seed: int = Field(default=0, ge=0, le=2**31)


class ReportSummary(BaseModel):
    """A validation report's headline: judged under the policy, with its hash."""

    id: str
    model: str
    version: int
    dataset_name: str
    dataset_digest: str
    dataset_rows: int
    label_column: str
    report_hash: str
    passed: bool
    failures: list[str]
    metrics: dict[str, float | None]
    created_at: datetime
    created_by: str
    feature_importance: dict[str, float] | None = Field(
        default=None,
        description="mean |contribution| per feature on the validation data, largest first "
        "(None: the report predates explanations or the model cannot be explained)",
    )


class ReportOut(ReportSummary):
    """A validation report with its full content."""

    report: ReportDocument


class CardContent(BaseModel):
    """The team-written fields of a model card (Mitchell et al. 2019; ONC HTI-1 source
    attributes). Fields filled from the version and its report are not part of this."""

    model_config = ConfigDict(extra="forbid")

    developer: str | None = Field(default=None, max_length=2000)
    contact: str | None = Field(default=None, max_length=2000)
    license: str | None = Field(default=None, max_length=2000)
    output_interpretation: str | None = Field(default=None, max_length=10_000)
    intended_use: str | None = Field(default=None, max_length=10_000)
    intended_users: str | None = Field(default=None, max_length=10_000)
    out_of_scope_uses: str | None = Field(default=None, max_length=10_000)
    development_data: str | None = Field(default=None, max_length=10_000)
    exclusion_criteria: str | None = Field(default=None, max_length=10_000)
    relevant_factors: str | None = Field(default=None, max_length=10_000)
    fairness_approach: str | None = Field(default=None, max_length=10_000)
    bias_mitigation: str | None = Field(default=None, max_length=10_000)
    validation_process: str | None = Field(default=None, max_length=10_000)
    ethical_considerations: str | None = Field(default=None, max_length=10_000)
    limitations: str | None = Field(default=None, max_length=10_000)
    recommendations: str | None = Field(default=None, max_length=10_000)
    update_schedule: str | None = Field(default=None, max_length=10_000)
    monitoring_plan: str | None = Field(default=None, max_length=10_000)


class ApprovalRequest(BaseModel):
    """An electronic signature: re-authentication, its meaning and an optional comment."""

    model_config = ConfigDict(extra="forbid")

    password: str = PASSWORD_FIELD
    otp: str | None = Field(default=None, max_length=16)
    meaning: Meaning = "approval"
    comment: str | None = Field(default=None, max_length=2000)


class SignatureOut(BaseModel):
    """An electronic signature as shown: who signed, meaning what, how and when, its seal, and
    whether it still verifies (with why not)."""

    id: str
    username: str
    printed_name: str
    role: str
    meaning: str
    comment: str | None
    signed_at: datetime
    method: str
    manifest_hash: str
    key_id: str
    valid: bool
    invalid_reasons: list[str] = Field(default_factory=list)


class ApprovalOut(SignatureOut):
    """A signature on a version, with the content it is bound to."""

    model: str
    version: int
    artifact_digest: str
    report_id: str
    report_hash: str
    card_hash: str


class PromoteRequest(BaseModel):
    """Point an alias at a version, with the reason recorded in the history."""

    model_config = ConfigDict(extra="forbid")

    version: VersionNumber
    reason: str = Field(min_length=3, max_length=500)


class RollbackRequest(BaseModel):
    """Move an alias back to the version it pointed at before."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=3, max_length=500)


class AliasEventOut(BaseModel):
    """One alias move in a model's history."""

    model: str
    alias: str
    kind: str
    from_version: int | None
    to_version: int | None
    occurred_at: datetime
    actor: str
    reason: str
    evidence: dict[str, Any] | None


class GateResult(BaseModel):
    """The promotion gates of one version for one alias; ``unmet`` lists what is missing."""

    model: str
    version: int
    alias: str
    protected: bool
    passed: bool
    unmet: list[str]
    checks: dict[str, bool]


class PolicyChangeRequest(BaseModel):
    """A proposed promotion policy that loosens the current one, and why."""

    model_config = ConfigDict(extra="forbid")

    policy: PromotionPolicy
    reason: str = Field(min_length=3, max_length=500)


class PolicySignRequest(BaseModel):
    """An electronic signature approving a policy change: re-authentication and a comment."""

    model_config = ConfigDict(extra="forbid")

    password: str = PASSWORD_FIELD
    otp: str | None = Field(default=None, max_length=16)
    comment: str | None = Field(default=None, max_length=2000)


class PolicyWithdrawRequest(BaseModel):
    """Withdrawing a pending policy change, with the reason."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=3, max_length=500)


class PolicySignatureOut(SignatureOut):
    """A signature on a policy change, with whether it still verifies."""


PolicyChangeStatus = Literal["pending", "applied", "withdrawn", "superseded"]


class PolicyChangeOut(BaseModel):
    """A policy change: what it loosens, who proposed and signed it, and what it still needs."""

    id: str
    model: str
    status: PolicyChangeStatus
    before: PromotionPolicy
    after: PromotionPolicy
    loosenings: list[str]
    reason: str
    proposed_at: datetime
    proposed_by: str
    decided_at: datetime | None
    decided_by: str | None
    signatures: list[PolicySignatureOut]
    needs: list[str] = Field(
        description="what the change still needs before it applies (empty once applied)"
    )
