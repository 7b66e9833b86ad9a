"""What the alerting service answers: alerts, silences, versioned documents, a run's summary.
Typed, frozen; the API returns them as they are and the SDK rebuilds them."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from medops.alerting.schemas import AlertingConfig, AlertState, Matcher, RuleSet, Severity


class AlertOut(BaseModel):
    """One alert: its rule, labels, state and who answered it when."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    fingerprint: str
    name: str
    deployment: str | None
    severity: Severity
    team: str
    state: AlertState
    labels: dict[str, str]
    annotations: dict[str, str]
    value: float | None
    evidence: str | None
    silenced: bool
    inhibited: bool
    started_at: datetime
    firing_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    acknowledge_note: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolve_note: str | None
    notifications: int = 0


class SilenceIn(BaseModel):
    """A silence to create: who is muted (matchers), until when, and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    matchers: list[Matcher] = Field(min_length=1)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime
    reason: str = Field(min_length=1, max_length=500)


class SilenceOut(BaseModel):
    """A silence, active or not."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    matchers: list[Matcher]
    starts_at: datetime
    ends_at: datetime
    author: str
    reason: str
    created_at: datetime
    expired_at: datetime | None
    expired_by: str | None
    active: bool


class RuleSetOut(BaseModel):
    """The rule set of a scope in force (version 0: the built-in defaults, never set), and,
    for a deployment, the rules that apply after merging with the defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule_set: RuleSet
    version: int
    updated_at: datetime | None = None
    updated_by: str | None = None
    effective: list[str] = Field(default_factory=list, description="rule names in force")


class ConfigOut(BaseModel):
    """The routing configuration in force (version 0: the built-in default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    config: AlertingConfig
    version: int
    updated_at: datetime | None = None
    updated_by: str | None = None


class EvaluationSummary(BaseModel):
    """What one evaluation did."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: datetime
    observations: int
    pending: int = 0
    firing: int = 0
    resolved: int = 0
    notifications: int = 0
    open: int = 0


class DispatchSummary(BaseModel):
    """What one run did."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0  # attempts that failed and will be retried
    dead: int = 0  # rows given up on in this run
    skipped: int = 0  # due rows another replica claimed first


class NotificationOut(BaseModel):
    """One outbox row, without its payload."""

    id: str
    receiver: str
    kind: str
    group_key: str
    status: str
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None
