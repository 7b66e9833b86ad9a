"""The shapes of training: a model's training specification (its entry point, pinned data,
parameters and where it runs), training runs with their records, and the triggers that request
them (schedule, monitoring verdict, labelled data, a person) with each firing's event.

Definitions (a spec, a trigger) are frozen data stored as JSON and audited; the code that
evaluates them lives in ``jobs.py`` and ``triggers.py``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from medops.bounds import INT32_MAX

ENTRY_POINT = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
RunStatus = Literal["queued", "running", "succeeded", "failed"]
ACTIVE: tuple[RunStatus, ...] = ("queued", "running")
TriggerKind = Literal["schedule", "monitoring", "labelled-data", "manual"]
DRIFT_VERDICTS = ("covariate-shift", "concept-drift", "covariate-shift-with-performance-drop")
MAX_LOG_CHARS = 200_000


class Resources(BaseModel):
    """What a Kubernetes training Job asks for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cpu: str = Field(default="1", pattern=r"^\d+(\.\d+)?m?$", description="CPU request/limit")
    memory: str = Field(default="2Gi", pattern=r"^\d+(Ki|Mi|Gi)$", description="memory")
    gpu: int = Field(default=0, ge=0, le=8, description="nvidia.com/gpu limit; 0 for none")


class DataSource(BaseModel):
    """A labelled CSV in a dataset: ``NAME`` (its newest version when used) or ``NAME@N``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str = Field(min_length=3, max_length=200)
    path: str = Field(min_length=1, max_length=1000)
    label: str = Field(default="label", max_length=128)


class TrainingSpec(BaseModel):
    """How a model is retrained: the entry point that receives the pinned training data and
    parameters and returns a fitted model, the data it is pinned to, and where it runs.

    ``entry_point`` is a Python callable ``module:function`` called as
    ``function(data: pandas.DataFrame, params: dict) -> fitted model`` (the label column is in
    ``data``); the runner converts the result to ONNX on the client's side with the champion's
    signature (same features, demographics, bands). ``command`` is a container command instead:
    it reads ``MEDOPS_TRAIN_DATA`` (a file), ``MEDOPS_TRAIN_PARAMS`` (JSON) and writes
    ``model.onnx`` into ``MEDOPS_TRAIN_OUTPUT``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    entry_point: str | None = Field(default=None, pattern=ENTRY_POINT.pattern, max_length=200)
    command: tuple[str, ...] | None = Field(default=None, min_length=1, max_length=64)
    dataset: str = Field(
        pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$",
        description="the dataset whose newest version a run pins (NAME; the run records NAME@N)",
    )
    path: str = Field(max_length=1000, description="the training table in the version (CSV)")
    label: str = Field(default="label", max_length=128)
    parameters: dict[str, Any] = Field(default_factory=dict)
    executor: Literal["local", "kubernetes"] = "local"
    image: str | None = Field(default=None, max_length=300, description="kubernetes only")
    resources: Resources = Field(default_factory=Resources)
    timeout_seconds: int = Field(default=3600, ge=10, le=7 * 86400)
    # What follows a registered candidate (each optional): the tags it carries (a plan
    # reads ``model_family``), a validation report on ``validation``, the champion's model
    # card copied (a retraining changes neither intended use nor population), the
    # challenger-against-champion report under the active plan (``recent``: the newest
    # labelled data), and a rollout on ``deployment``: the plan's shadow and canary when the
    # report is within the plan, else a stop that waits for the full approval path.
    tags: dict[str, str] = Field(default_factory=dict)
    validation: DataSource | None = None
    copy_card: bool = True
    evaluate: bool = False
    recent: DataSource | None = None
    deployment: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _one_entry(self) -> TrainingSpec:
        if (self.entry_point is None) == (self.command is None):
            msg = "give exactly one of entry_point (module:function) and command"
            raise ValueError(msg)
        return self


class TrainingSpecOut(BaseModel):
    """A model's training specification as stored (a new version on every change)."""

    model: str
    version: int
    spec: TrainingSpec
    updated_at: datetime
    updated_by: str


class RunRequest(BaseModel):
    """A request to retrain a model now (a person's trigger, or a trigger's firing)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=1000)
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="merged over the spec's parameters"
    )
    dataset_version: int | None = Field(
        default=None, ge=1, le=INT32_MAX, description="pin this version instead of the newest"
    )


class RunRecord(BaseModel):
    """What a runner reports when a run ends: the candidate it registered (if any), the code
    commit, the environment it ran in, its captured logs and, on failure, the error."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["succeeded", "failed"]
    candidate_version: int | None = Field(default=None, ge=1, le=INT32_MAX)
    code_commit: str | None = Field(default=None, max_length=64)
    environment: dict[str, str] = Field(default_factory=dict)
    logs: str = Field(default="", max_length=MAX_LOG_CHARS)
    error: str | None = Field(default=None, max_length=4000)
    mlflow_run: str | None = Field(default=None, max_length=200)
    candidate_report: str | None = Field(default=None, max_length=64)
    within_plan: bool | None = None
    rollout: str | None = Field(default=None, max_length=64)
    rollout_state: str | None = Field(default=None, max_length=16)

    @model_validator(mode="after")
    def _consistent(self) -> RunRecord:
        if self.status == "succeeded" and self.candidate_version is None:
            msg = "a succeeded run names the candidate version it registered"
            raise ValueError(msg)
        return self


class RunOut(BaseModel):
    """One training run: what it was asked to do, on which pinned data, and how it ended."""

    id: str
    model: str
    status: RunStatus
    reason: str
    trigger_id: str | None
    spec_version: int
    spec: TrainingSpec
    dataset: str = Field(description="the pinned dataset version, NAME@N")
    dataset_root: str = Field(description="the version's content root (sha256:...)")
    parameters: dict[str, Any]
    requested_at: datetime
    requested_by: str
    started_at: datetime | None
    started_by: str | None
    finished_at: datetime | None
    candidate_version: int | None
    code_commit: str | None
    environment: dict[str, str]
    error: str | None
    mlflow_run: str | None
    candidate_report: str | None
    within_plan: bool | None
    rollout: str | None
    rollout_state: str | None
    log_chars: int


class RunLogs(BaseModel):
    """A run's captured output (stdout and stderr of the entry point, interleaved)."""

    id: str
    status: RunStatus
    logs: str


class TriggerIn(BaseModel):
    """A trigger of one model's retraining.

    - ``schedule``: every ``every_seconds`` since the last firing (or the trigger's creation).
    - ``monitoring``: a window of ``deployment`` computed after the last check whose verdict is
      one of ``verdicts`` (default: any drift verdict), or, with ``on_alerts``, that raised an
      alert (a CBPE estimate below its floor, a performance drop).
    - ``labelled-data``: at least ``min_labelled`` outcomes recorded for the model's
      predictions since the last firing.
    - ``manual``: fires only when a person asks (``medops train run``); kept for the record.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(max_length=64)
    kind: TriggerKind
    every_seconds: int | None = Field(default=None, ge=60, le=366 * 86400)
    deployment: str | None = Field(default=None, max_length=64)
    verdicts: tuple[str, ...] = DRIFT_VERDICTS
    on_alerts: bool = False
    min_labelled: int | None = Field(default=None, ge=1, le=10**9)
    description: str | None = Field(default=None, max_length=1000)

    @model_validator(mode="after")
    def _complete(self) -> TriggerIn:
        needs = {"schedule": "every_seconds", "monitoring": "deployment"}
        needs["labelled-data"] = "min_labelled"
        wanted = needs.get(self.kind)
        if wanted is not None and getattr(self, wanted) is None:
            msg = f"a {self.kind} trigger needs {wanted}"
            raise ValueError(msg)
        return self


class TriggerOut(BaseModel):
    """A trigger as stored, with its state."""

    id: str
    definition: TriggerIn
    paused: bool
    created_at: datetime
    created_by: str
    checked_at: datetime
    last_fired_at: datetime | None


TriggerOutcome = Literal["fired", "deduplicated", "failed"]


class TriggerEventOut(BaseModel):
    """One firing of a trigger: a run requested, or deduplicated against the running one."""

    id: int
    trigger_id: str | None
    model: str
    kind: TriggerKind
    at: datetime
    outcome: TriggerOutcome
    run_id: str | None
    detail: str


class EvaluationOut(BaseModel):
    """What one evaluation of the triggers did."""

    checked: int
    events: list[TriggerEventOut]
