"""Input and output shapes of the audit domain."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel


class Outcome(StrEnum):
    """How an audited action ended."""

    SUCCESS = "success"
    FAILURE = "failure"
    DENIED = "denied"


@dataclass(frozen=True)
class AuditEntry:
    """What happened; the actor, origin and time are added by the audit service."""

    action: str
    outcome: Outcome = Outcome.SUCCESS
    resource_type: str | None = None
    resource_id: str | None = None
    patient_ref: str | None = None
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class AuditEventOut(BaseModel):
    """One audit record as the API returns it."""

    seq: int
    occurred_at: datetime
    actor_id: str | None
    actor_name: str | None
    actor_role: str | None
    auth_method: str | None
    action: str
    resource_type: str | None
    resource_id: str | None
    patient_ref: str | None
    outcome: str
    reason: str | None
    source_ip: str | None
    user_agent: str | None
    request_id: str | None
    details: dict[str, Any] | None


class AuditPage(BaseModel):
    """A page of audit records, newest first; pass ``next_before`` to get older ones."""

    events: list[AuditEventOut]
    next_before: int | None


@dataclass(frozen=True)
class AuditQuery:
    """Filters of an audit search; every one is optional and they combine with AND."""

    actor: str | None = None
    action: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    patient_ref: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class ProblemOut(BaseModel):
    """One thing that does not verify: the record's sequence number when known, where, why,
    and its kind: ``record`` (a chain), ``opening``, ``checkpoint``, ``export`` or ``row``."""

    seq: int | None
    where: str
    reason: str
    kind: str


class VerificationOut(BaseModel):
    """The result of verifying the audit log and the rows bound to it."""

    ok: bool
    records: int
    chains: int
    anchored_chains: int
    legacy_chains: int
    checkpoints: int
    exported_checkpoints: int
    rows: dict[str, int]
    macs_checked: bool
    problems: int
    first_bad_seq: int | None
    first_problem: str | None
    findings: list[ProblemOut]  # the first 100 problems
    limits: list[str]
