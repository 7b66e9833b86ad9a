"""The shapes of service-level objectives: what is promised (objectives over a rolling
period), where it stands (status, budgets, burn rates), and the month's SLA report with its
incidents."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from medops.serving.cost_schemas import DeploymentCost

ObjectiveKind = Literal["availability", "latency", "quality"]
OBJECTIVE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


class Objective(BaseModel):
    """One promise over the period.

    - ``availability``: the share of predict requests that did not fail on our side (not 5xx).
    - ``latency``: the share of predict requests answered within ``threshold_ms``.
    - ``quality``: the share of monitoring windows (of ``window_kind``) whose verdict is
      stable, and whose realised accuracy (or, without outcomes, the CBPE estimate) is at least
      ``accuracy_floor`` when one is set.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Unique within the deployment's objectives.")
    kind: ObjectiveKind
    target: float = Field(gt=0, lt=1, description="The share of good events promised.")
    threshold_ms: float = Field(default=500.0, gt=0, le=60_000, description="latency only")
    accuracy_floor: float | None = Field(default=None, ge=0, le=1, description="quality only")
    window_kind: str = Field(default="day", max_length=16, description="quality only")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not OBJECTIVE_NAME.match(value):
            msg = f"must match {OBJECTIVE_NAME.pattern}"
            raise ValueError(msg)
        return value


DEFAULT_OBJECTIVES: tuple[Objective, ...] = (
    Objective(name="availability", kind="availability", target=0.999),
    Objective(name="latency", kind="latency", target=0.95, threshold_ms=500.0),
    Objective(name="quality", kind="quality", target=0.9),
)


class SloConfig(BaseModel):
    """A deployment's objectives and the rolling period their budgets cover."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    period_days: int = Field(
        default=30, ge=28, le=30, description="The rolling period: 28 or 30 days."
    )
    objectives: list[Objective] = Field(default_factory=lambda: list(DEFAULT_OBJECTIVES))

    @field_validator("period_days")
    @classmethod
    def _period(cls, value: int) -> int:
        if value not in (28, 30):
            msg = "must be 28 or 30"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _unique(self) -> SloConfig:
        names = [o.name for o in self.objectives]
        if len(set(names)) != len(names):
            msg = "objective names must be unique"
            raise ValueError(msg)
        return self


class SloConfigIn(SloConfig):
    """A new version of the objectives of ``scope`` (a deployment, or ``*`` for all)."""

    scope: str = Field(min_length=1, max_length=64)


class SloConfigOut(SloConfig):
    """The objectives in force for a deployment, and where they come from."""

    scope: str  # the deployment, "*" or "default" (built in)
    version: int | None = None
    created_at: datetime | None = None
    created_by: str | None = None


class ObjectivesOut(BaseModel):
    """The objectives in force for a scope, and every stored version of the scope's own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    current: SloConfigOut
    versions: list[SloConfigOut]


class BurnOut(BaseModel):
    """One multi-window burn-rate condition as it stands."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    severity: Literal["page", "ticket"]
    long_window: str
    short_window: str
    factor: float
    long_rate: float | None
    short_rate: float | None
    firing: bool


class ObjectiveStatus(BaseModel):
    """An objective over the period ending now: attainment, budget and burn rates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    objective: Objective
    good: int
    total: int
    attainment: float | None
    met: bool | None
    allowed_bad: float
    bad: int
    budget_remaining: float | None  # share of the budget left; negative: overspent
    burn_rate_1h: float | None = None
    exhaustion_hours: float | None = None  # at the last hour's burn rate
    burn: list[BurnOut] = Field(default_factory=list)


class SloStatus(BaseModel):
    """A deployment's objectives as they stand at ``at``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    deployment: str
    at: datetime
    start: datetime
    period_days: int
    config_scope: str
    config_version: int | None
    objectives: list[ObjectiveStatus]


class Actor(BaseModel):
    """Who did something to an incident, and when."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    by: str | None
    at: datetime


class Incident(BaseModel):
    """An alert that fired in the report's month (from the alert history)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    severity: str
    started: datetime
    acknowledged: Actor | None = None
    resolved: Actor | None = None
    notifications: int = 0
    summary: str | None = None

    @property
    def minutes_open(self) -> float | None:
        """Minutes from firing to resolution; None while open."""
        if self.resolved is None:
            return None
        return (self.resolved.at - self.started).total_seconds() / 60


class DayAttainment(BaseModel):
    """One day of the month: events and good events per objective."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    day: datetime
    good: dict[str, int]
    total: dict[str, int]


class ReportObjective(BaseModel):
    """One objective over the calendar month."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    objective: Objective
    good: int
    total: int
    attainment: float | None
    met: bool | None
    budget_remaining: float | None
    budget_spent_by_day: list[float | None]  # cumulative share of the month's budget spent


class SlaReport(BaseModel):
    """The month's SLA report of one deployment, for a hospital committee."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    deployment: str
    month: str
    start: datetime
    end: datetime
    generated_at: datetime
    objectives: list[ReportObjective]
    days: list[DayAttainment]
    incidents: list[Incident]
    requests: int
    records: int
    p95_ms: float | None
    p99_ms: float | None
    cost: DeploymentCost | None = None  # the month's resources and cost at the prices
    currency: str | None = None  # the prices'


def parse_month(value: str) -> tuple[int, int]:
    """``YYYY-MM`` as (year, month); ValueError otherwise."""
    if not MONTH.match(value):
        msg = "must be a month as YYYY-MM"
        raise ValueError(msg)
    return int(value[:4]), int(value[5:])
