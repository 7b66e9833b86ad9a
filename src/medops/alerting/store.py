"""Versioned alerting documents: rule sets (per deployment, or ``*`` for every one) and the
routing configuration. Every version is kept; setting one is audited (``alerts.rules.set``,
``alerts.config.set``) with the document before and after, in the same transaction."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from medops.alerting.defaults import DEFAULT_CONFIG, DEFAULT_RULE_SET, effective_rules
from medops.alerting.records import ConfigOut, RuleSetOut
from medops.alerting.schemas import AlertingConfig, Route, RuleSet
from medops.alerting.tables import AlertDocument
from medops.audit.schemas import AuditEntry
from medops.audit.service import AuditService
from medops.context import Context
from medops.core.canonical import canonical_json
from medops.errors import FieldError, InvalidInputError
from medops.monitoring.configs import check_deployment

RULES = "rules"
CONFIG = "config"


def latest(session: Session, kind: str, scope: str) -> AlertDocument | None:
    """The version in force of (``kind``, ``scope``), None when never set."""
    return session.scalars(
        select(AlertDocument)
        .where(AlertDocument.kind == kind, AlertDocument.scope == scope)
        .order_by(AlertDocument.version.desc())
        .limit(1)
    ).first()


def rule_set(session: Session, scope: str) -> RuleSet | None:
    """The stored rule set of ``scope`` (None: never set)."""
    row = latest(session, RULES, scope)
    return RuleSet.model_validate_json(row.document) if row is not None else None


def defaults(session: Session) -> RuleSet:
    """The installation's default rules (``*``): stored, else the built-in ones."""
    return rule_set(session, "*") or DEFAULT_RULE_SET


def config(session: Session) -> AlertingConfig:
    """The routing configuration in force."""
    row = latest(session, CONFIG, "*")
    return AlertingConfig.model_validate_json(row.document) if row is not None else DEFAULT_CONFIG


def rules_out(session: Session, scope: str) -> RuleSetOut:
    """The rule set of ``scope`` as answered, with the rule names in force there."""
    check_scope(session, scope)
    row = latest(session, RULES, scope)
    stored = RuleSet.model_validate_json(row.document) if row is not None else None
    shown = stored or (DEFAULT_RULE_SET if scope == "*" else RuleSet(scope=scope))
    merged = effective_rules(defaults(session), stored if scope != "*" else None)
    return RuleSetOut(
        rule_set=shown,
        version=row.version if row is not None else 0,
        updated_at=row.created_at if row is not None else None,
        updated_by=row.created_by if row is not None else None,
        effective=[rule.name for rule in merged if rule.enabled],
    )


def config_out(session: Session) -> ConfigOut:
    """The routing configuration as answered."""
    row = latest(session, CONFIG, "*")
    return ConfigOut(
        config=config(session),
        version=row.version if row is not None else 0,
        updated_at=row.created_at if row is not None else None,
        updated_by=row.created_by if row is not None else None,
    )


def save(
    session: Session,
    audit: AuditService,
    ctx: Context,
    kind: str,
    scope: str,
    document: RuleSet | AlertingConfig,
    user: str,
    now: datetime,
) -> int:
    """Store a new version of (``kind``, ``scope``) and audit it; returns its version."""
    before = latest(session, kind, scope)
    version = (
        session.scalar(
            select(func.max(AlertDocument.version)).where(
                AlertDocument.kind == kind, AlertDocument.scope == scope
            )
        )
        or 0
    ) + 1
    after = document.model_dump(mode="json", by_alias=True)
    audit.record(
        session,
        ctx,
        AuditEntry(
            action=f"alerts.{kind}.set",
            resource_type="alert_rules" if kind == RULES else "alert_config",
            resource_id=scope,
            details={
                "version": version,
                "before": json.loads(before.document) if before is not None else None,
                "after": after,
            },
        ),
    )
    session.add(
        AlertDocument(
            kind=kind,
            scope=scope,
            version=version,
            document=canonical_json(after),
            created_at=now,
            created_by=user,
        )
    )
    return version


def check_scope(session: Session, scope: str) -> None:
    """Refuse a rule set for a deployment that does not exist (``*`` is every deployment)."""
    if scope != "*":
        check_deployment(session, scope)


def check_config(value: AlertingConfig) -> None:
    """Refuse a configuration naming a receiver, policy or schedule it does not define."""
    receivers = {r.name for r in value.receivers}
    policies = {p.name for p in value.escalation_policies}
    schedules = {s.name for s in value.schedules}
    errors: list[FieldError] = []

    def walk(node: Route, where: str) -> None:
        if node.receiver is not None and node.receiver not in receivers:
            errors.append(FieldError(f"{where}.receiver", f"no receiver {node.receiver!r}"))
        if node.escalation is not None and node.escalation not in policies:
            errors.append(FieldError(f"{where}.escalation", f"no policy {node.escalation!r}"))
        for index, child in enumerate(node.routes):
            walk(child, f"{where}.routes.{index}")

    walk(value.route, "route")
    for n, schedule in enumerate(value.schedules):
        times = [("start", schedule.start)]
        for o, cover in enumerate(schedule.overrides):
            times += [(f"overrides.{o}.start", cover.start), (f"overrides.{o}.end", cover.end)]
        errors += [
            FieldError(f"schedules.{n}.{where}", "give a time zone (e.g. Z)")
            for where, when in times
            if when.tzinfo is None
        ]
    for p, policy in enumerate(value.escalation_policies):
        for n, level in enumerate(policy.levels):
            where = f"escalation_policies.{p}.levels.{n}"
            if not level.receivers:  # the schedule names who is on call; receivers carry it
                errors.append(
                    FieldError(f"{where}.receivers", "a level pages one receiver at least")
                )
            errors += [
                FieldError(f"{where}.receivers", f"no receiver {name!r}")
                for name in level.receivers
                if name not in receivers
            ]
            if level.schedule is not None and level.schedule not in schedules:
                errors.append(FieldError(f"{where}.schedule", f"no schedule {level.schedule!r}"))
    if errors:
        msg = "the configuration names what it does not define"
        raise InvalidInputError(msg, errors=errors)
