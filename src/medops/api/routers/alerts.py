"""Alerts over HTTP: list, read, acknowledge and resolve alerts; silences; the versioned rule
sets and routing configuration; run an evaluation; a deployment's alert history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import AwareDatetime, BaseModel, Field
from starlette.concurrency import run_in_threadpool

from medops.alerting.records import (
    AlertOut,
    ConfigOut,
    EvaluationSummary,
    RuleSetOut,
    SilenceIn,
    SilenceOut,
)
from medops.alerting.schemas import AlertingConfig, AlertState, RuleSet
from medops.api.deps import API_PREFIX, ServicesDep, require
from medops.context import Context
from medops.core.permissions import Permission
from medops.serving.schemas import DEPLOYMENT_NAME_PATTERN

router = APIRouter(tags=["alerts"])
Reader = Annotated[Context, Depends(require(Permission.ALERTS_READ))]
Responder = Annotated[Context, Depends(require(Permission.ALERTS_RESPOND))]
Configurer = Annotated[Context, Depends(require(Permission.ALERTS_CONFIGURE))]
Runner = Annotated[Context, Depends(require(Permission.ALERTS_RUN))]
SCOPE_PATTERN = rf"^(\*|{DEPLOYMENT_NAME_PATTERN.strip('^$')})$"
# Ids are 32 hex digits: other paths under /alerts/ (e.g. the signed-link action) stay free.
AlertId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
SilenceId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]


class Answer(BaseModel):
    """A note with an acknowledgement or a resolution."""

    note: str | None = Field(default=None, max_length=500)


@router.get(f"{API_PREFIX}/alerts", name="alerts.list")
def list_alerts(
    services: ServicesDep,
    _ctx: Reader,
    state: Annotated[AlertState | None, Query()] = None,
    deployment: Annotated[str | None, Query(pattern=DEPLOYMENT_NAME_PATTERN)] = None,
    include_resolved: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AlertOut]:
    """Alerts, newest first: the open ones unless ``state`` or ``include_resolved`` say."""
    return services.alerts.list_alerts(
        state=state, deployment=deployment, include_resolved=include_resolved, limit=limit
    )


@router.get(f"{API_PREFIX}/alerts/history", name="alerts.history")
def alert_history(
    services: ServicesDep,
    _ctx: Reader,
    deployment: Annotated[str, Query(pattern=DEPLOYMENT_NAME_PATTERN)],
    start: Annotated[AwareDatetime, Query()],
    end: Annotated[AwareDatetime, Query()],
) -> list[AlertOut]:
    """The deployment's alerts that fired in [start, end), with who answered them when."""
    return services.alerts.history(deployment, start, end)


@router.get(f"{API_PREFIX}/alerts/rules", name="alerts.rules")
def alert_rules(
    services: ServicesDep,
    _ctx: Reader,
    scope: Annotated[str, Query(pattern=SCOPE_PATTERN, description="* or a deployment")] = "*",
) -> RuleSetOut:
    """The rule set of a scope in force (version 0: the built-in defaults)."""
    return services.alerts.rules(scope)


@router.put(f"{API_PREFIX}/alerts/rules", name="alerts.rules.set")
def set_alert_rules(body: RuleSet, services: ServicesDep, ctx: Configurer) -> RuleSetOut:
    """Store a new version of a scope's rule set (a deployment's rule replaces the default
    of the same name); audited with before and after."""
    return services.alerts.set_rules(ctx, body)


@router.get(f"{API_PREFIX}/alerts/config", name="alerts.config")
def alert_config(services: ServicesDep, _ctx: Reader) -> ConfigOut:
    """The routing configuration in force: tree, receivers, escalation, schedules."""
    return services.alerts.config()


@router.put(f"{API_PREFIX}/alerts/config", name="alerts.config.set")
def set_alert_config(body: AlertingConfig, services: ServicesDep, ctx: Configurer) -> ConfigOut:
    """Store a new version of the routing configuration; audited with before and after."""
    return services.alerts.set_config(ctx, body)


@router.get(f"{API_PREFIX}/alerts/silences", name="alerts.silences")
def alert_silences(
    services: ServicesDep, _ctx: Reader, everything: bool = False
) -> list[SilenceOut]:
    """Silences not over yet (all with ``everything``), newest first."""
    return services.alerts.list_silences(everything=everything)


@router.post(f"{API_PREFIX}/alerts/silences", name="alerts.silence", status_code=201)
def create_silence(body: SilenceIn, services: ServicesDep, ctx: Responder) -> SilenceOut:
    """Mute the alerts the matchers select until ``ends_at``; reason required; audited."""
    return services.alerts.silence(ctx, body)


@router.post(f"{API_PREFIX}/alerts/silences/{{silence_id}}/expire", name="alerts.silence.expire")
def expire_silence(silence_id: SilenceId, services: ServicesDep, ctx: Responder) -> SilenceOut:
    """End a silence now; audited."""
    return services.alerts.expire_silence(ctx, silence_id)


@router.post(f"{API_PREFIX}/alerts/evaluate", name="alerts.evaluate")
async def evaluate_alerts(services: ServicesDep, ctx: Runner) -> EvaluationSummary:
    """Run one evaluation now (the server runs one every ``MEDOPS_ALERT_EVALUATE_SECONDS``)."""
    return await run_in_threadpool(services.alerts.evaluate, ctx)


@router.get(f"{API_PREFIX}/alerts/{{alert_id}}", name="alerts.show")
def show_alert(alert_id: AlertId, services: ServicesDep, _ctx: Reader) -> AlertOut:
    """One alert, with who acknowledged and resolved it and the notifications sent."""
    return services.alerts.get(alert_id)


@router.post(f"{API_PREFIX}/alerts/{{alert_id}}/acknowledge", name="alerts.acknowledge")
def acknowledge_alert(
    alert_id: AlertId, body: Answer, services: ServicesDep, ctx: Responder
) -> AlertOut:
    """Take a firing alert: its escalation stops; audited with the note."""
    return services.alerts.acknowledge(ctx, alert_id, body.note)


@router.post(f"{API_PREFIX}/alerts/{{alert_id}}/resolve", name="alerts.resolve")
def resolve_alert(
    alert_id: AlertId, body: Answer, services: ServicesDep, ctx: Responder
) -> AlertOut:
    """End an alert by hand; audited with the note."""
    return services.alerts.resolve(ctx, alert_id, body.note)
