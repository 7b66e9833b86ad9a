"""The shapes alerting is made of: observations, rules, routing, and the notifications sent.

Definitions (a rule set, the routing tree with its receivers, escalation policies, on-call
schedules and inhibitions) are frozen data: stored as versioned documents, diffed and audited
on every change; the code that evaluates them lives elsewhere (``evaluate.py``, ``routing.py``).
The vocabulary follows Prometheus Alertmanager (matchers, group_wait, group_interval,
repeat_interval, inhibition, silences) and PagerDuty (escalation levels, acknowledgement), so
an operator who knows those reads these without a manual.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Severity = Literal["critical", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("critical", "warning", "info")
Team = Literal["ops", "data_science", "clinical_safety"]
TEAMS: tuple[Team, ...] = ("ops", "data_science", "clinical_safety")
# pending: the condition holds, for less than the rule's ``for``; firing: held long enough;
# acknowledged: firing, and someone took it (escalation stops); resolved: the condition ended
# (or someone resolved it by hand).
AlertState = Literal["pending", "firing", "acknowledged", "resolved"]
ALERT_STATES: tuple[AlertState, ...] = ("pending", "firing", "acknowledged", "resolved")
Comparison = Literal[">", ">=", "<", "<=", "==", "!="]
MatchOp = Literal["=", "!=", "=~", "!~"]
ReceiverKind = Literal[
    "webhook", "alertmanager", "pagerduty", "opsgenie", "slack", "teams", "email"
]
# firing: a group's alerts started firing (or the set changed); repeat: still firing after
# repeat_interval; escalation: not acknowledged in time, sent to the next level; resolved:
# every alert of the group ended.
NotificationKind = Literal["firing", "repeat", "escalation", "resolved"]
NotificationStatus = Literal["queued", "sent", "dead"]

LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,63}$")
RULE_NAME = re.compile(r"^[A-Z][A-Za-z0-9]{0,63}$")  # CamelCase, as Prometheus alert names
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")  # receivers, policies, schedules


def _labels(value: dict[str, str]) -> dict[str, str]:
    for key, text in value.items():
        if not LABEL_NAME.match(key):
            msg = f"label name {key!r} must match {LABEL_NAME.pattern}"
            raise ValueError(msg)
        if len(text) > 500:
            msg = f"label {key!r} is longer than 500 characters"
            raise ValueError(msg)
    return value


class Observation(BaseModel):
    """One measured value of one signal, for one deployment (or the installation when
    ``deployment`` is None), with the labels that tell its instances apart (a feature's name
    for ``feature_drift``, a receiver's name for ``receiver_failing``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    signal: str
    deployment: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    value: float
    # Where the evidence is: a console path (e.g. the monitoring window), shown in alerts.
    evidence: str | None = None


class Matcher(BaseModel):
    """A label matcher, as Alertmanager's: ``=``, ``!=``, ``=~`` and ``!~`` (regular
    expressions match the whole value)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str
    op: MatchOp = "="
    value: str

    @field_validator("label")
    @classmethod
    def _label(cls, value: str) -> str:
        if not LABEL_NAME.match(value):
            msg = f"must match {LABEL_NAME.pattern}"
            raise ValueError(msg)
        return value

    def matches(self, labels: dict[str, str]) -> bool:
        """Whether ``labels`` satisfy this matcher (a missing label is the empty string)."""
        have = labels.get(self.label, "")
        if self.op == "=":
            return have == self.value
        if self.op == "!=":
            return have != self.value
        found = re.fullmatch(self.value, have) is not None
        return found if self.op == "=~" else not found


class AlertRule(BaseModel):
    """A condition over one signal: ``signal op threshold`` held for ``for_seconds`` fires an
    alert named ``name`` with ``severity``, routed by its labels (``team`` among them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="The alert's name, CamelCase (e.g. ErrorRateHigh).")
    signal: str = Field(description="The signal compared (see docs/alerting.md).")
    op: Comparison = ">"
    threshold: float
    for_seconds: int = Field(default=0, ge=0, le=7 * 86400)
    severity: Severity = "warning"
    team: Team = "ops"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(
        default_factory=dict,
        description="summary, description, runbook_url: shown in notifications.",
    )
    enabled: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not RULE_NAME.match(value):
            msg = f"must match {RULE_NAME.pattern}"
            raise ValueError(msg)
        return value

    @field_validator("labels")
    @classmethod
    def _check_labels(cls, value: dict[str, str]) -> dict[str, str]:
        return _labels(value)


class RuleSet(BaseModel):
    """The rules of one deployment (``scope`` its name) or of every deployment (``scope``
    ``*``, the installation's defaults). A deployment's own rule replaces the default of the
    same name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scope: str = "*"
    rules: list[AlertRule] = Field(default_factory=list)


class Route(BaseModel):
    """A node of the routing tree, as Alertmanager's route: alerts whose labels satisfy every
    matcher go to ``receiver`` (inherited from the parent when unset), grouped by
    ``group_by``; the first matching child wins unless it says ``continue``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    receiver: str | None = None
    matchers: list[Matcher] = Field(default_factory=list)
    group_by: list[str] | None = None
    group_wait_seconds: int | None = Field(default=None, ge=0, le=86400)
    group_interval_seconds: int | None = Field(default=None, ge=1, le=86400)
    repeat_interval_seconds: int | None = Field(default=None, ge=60, le=30 * 86400)
    escalation: str | None = Field(
        default=None, description="An escalation policy's name: who is paged when nobody acks."
    )
    continue_matching: bool = Field(default=False, alias="continue")
    routes: list[Route] = Field(default_factory=list)


class ReceiverConfig(BaseModel):
    """Where notifications go. Secrets (an HMAC key, a routing key, an SMTP password) are not
    stored here: ``secret`` names one, read from ``MEDOPS_ALERT_SECRET_<NAME>`` or the
    secrets folder (``docs/alerting.md``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: ReceiverKind
    url: str | None = None  # webhook, alertmanager, pagerduty, opsgenie, slack, teams
    secret: str | None = None  # HMAC key, PagerDuty routing key, Opsgenie API key, SMTP password
    # email
    to: list[str] = Field(default_factory=list)
    sender: str | None = None
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_user: str | None = None
    starttls: bool = True
    max_attempts: int = Field(default=12, ge=1, le=1000)
    # webhook: medops' own JSON body, or Alertmanager's webhook format (version 4).
    format: Literal["medops", "alertmanager"] = "medops"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            msg = f"must match {NAME.pattern}"
            raise ValueError(msg)
        return value


class EscalationLevel(BaseModel):
    """One level of an escalation policy: notify ``receivers`` (and whoever ``schedule`` says
    is on call); the next level follows after ``after_minutes`` without acknowledgement."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    receivers: list[str] = Field(default_factory=list)
    schedule: str | None = None
    after_minutes: int = Field(default=15, ge=1, le=7 * 1440)


class EscalationPolicy(BaseModel):
    """Levels paged in turn until someone acknowledges; the whole policy runs ``repeat``
    more times after its last level."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    levels: list[EscalationLevel] = Field(min_length=1)
    repeat: int = Field(default=0, ge=0, le=10)


class ScheduleOverride(BaseModel):
    """Someone covering a schedule from ``start`` to ``end`` instead of the rotation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user: str
    start: datetime
    end: datetime


class Schedule(BaseModel):
    """An on-call rotation: ``users`` take turns of ``shift_hours`` from ``start``;
    overrides win while they last. ``contacts`` maps a user to the address paged for them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    users: list[str] = Field(min_length=1)
    start: datetime
    shift_hours: int = Field(default=168, ge=1, le=24 * 28)
    overrides: list[ScheduleOverride] = Field(default_factory=list)
    contacts: dict[str, str] = Field(default_factory=dict)


class Inhibition(BaseModel):
    """While an alert matching ``source`` fires, alerts matching ``target`` with the same
    values of the ``equal`` labels are muted (Alertmanager's inhibit_rules)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: list[Matcher]
    target: list[Matcher]
    equal: list[str] = Field(default_factory=lambda: ["deployment"])


class AlertingConfig(BaseModel):
    """The installation's routing: the tree, its receivers, escalation policies, on-call
    schedules and inhibitions. Stored versioned; every change audited with before and after."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    route: Route
    receivers: list[ReceiverConfig] = Field(default_factory=list)
    escalation_policies: list[EscalationPolicy] = Field(default_factory=list)
    schedules: list[Schedule] = Field(default_factory=list)
    inhibitions: list[Inhibition] = Field(default_factory=list)
    # Defaults of the root route, as Alertmanager's.
    group_by: list[str] = Field(default_factory=lambda: ["alertname", "deployment"])
    group_wait_seconds: int = Field(default=30, ge=0, le=86400)
    group_interval_seconds: int = Field(default=300, ge=1, le=86400)
    repeat_interval_seconds: int = Field(default=4 * 3600, ge=60, le=30 * 86400)


class NotificationAlert(BaseModel):
    """One alert as a notification carries it: never a patient identifier or a raw feature
    value, only the rule, labels, the compared value and links."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    fingerprint: str
    name: str
    state: AlertState
    severity: Severity
    labels: dict[str, str]
    annotations: dict[str, str]
    value: float | None
    starts_at: datetime
    ends_at: datetime | None = None
    evidence: str | None = None  # a console path


class NotificationPayload(BaseModel):
    """What one outbox row sends to one receiver: a group's alerts at one transition.
    Receivers render it to their wire format; links (console, signed acknowledge and resolve)
    are added at send time from ``MEDOPS_PUBLIC_URL``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    group_key: str
    receiver: str
    kind: NotificationKind
    status: Literal["firing", "resolved"]
    level: int = 0  # escalation level (0: the route's receiver)
    oncall: str | None = None  # the user a schedule put on call, when a level names one
    oncall_contact: str | None = None
    group_labels: dict[str, str]
    alerts: list[NotificationAlert]
    created_at: datetime
