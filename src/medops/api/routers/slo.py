"""Service-level objectives and cost over HTTP: every deployment's SLO status, one
deployment's, its objectives (read, and set as a new audited version), the month's SLA report
(JSON or HTML), and the cost report."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from medops.alerting.slo_schemas import (
    MONTH,
    ObjectivesOut,
    SloConfig,
    SloConfigIn,
    SloConfigOut,
    SloStatus,
)
from medops.api.deps import API_PREFIX, ServicesDep, require
from medops.context import Context
from medops.core.permissions import Permission
from medops.serving.cost import CostReport
from medops.serving.schemas import DEPLOYMENT_NAME_PATTERN

router = APIRouter(tags=["slo"])
Reader = Annotated[Context, Depends(require(Permission.SLO_READ))]
Configurer = Annotated[Context, Depends(require(Permission.ALERTS_CONFIGURE))]
Name = Annotated[str, Path(pattern=DEPLOYMENT_NAME_PATTERN)]
Scope = Annotated[
    str, Path(pattern=f"^(\\*|{DEPLOYMENT_NAME_PATTERN.strip('^$')})$", description="or *")
]
PREFIX = f"{API_PREFIX}/slo"


@router.get(PREFIX, name="slo.list")
def slo_list(services: ServicesDep, _ctx: Reader) -> list[SloStatus]:
    """Every deployment's objectives as they stand: attainment, budget left, burn rates."""
    return services.slo.statuses()


@router.get(f"{PREFIX}/{{deployment}}", name="slo.status")
def slo_status(deployment: Name, services: ServicesDep, _ctx: Reader) -> SloStatus:
    """One deployment's objectives as they stand."""
    return services.slo.status(deployment)


@router.get(f"{PREFIX}/{{scope}}/objectives", name="slo.objectives")
def slo_objectives(scope: Scope, services: ServicesDep, _ctx: Reader) -> ObjectivesOut:
    """The objectives in force for a deployment (or ``*``: every deployment without its own),
    and the stored versions of the scope's own."""
    return ObjectivesOut(current=services.slo.config(scope), versions=services.slo.versions(scope))


@router.put(f"{PREFIX}/{{scope}}/objectives", name="slo.set")
def slo_set(scope: Scope, body: SloConfig, services: ServicesDep, ctx: Configurer) -> SloConfigOut:
    """Store a new version of the scope's objectives (audited ``slo.set``, before and after);
    it applies at once."""
    return services.slo.set(ctx, SloConfigIn(scope=scope, **body.model_dump()))


@router.get(
    f"{PREFIX}/{{deployment}}/report",
    name="slo.report",
    response_model=None,
    responses={200: {"content": {"application/json": {}, "text/html": {}}}},
)
async def slo_report(
    deployment: Name,
    services: ServicesDep,
    _ctx: Reader,
    month: Annotated[str | None, Query(pattern=MONTH.pattern, description="YYYY-MM")] = None,
    format: Annotated[Literal["json", "html"], Query()] = "json",  # noqa: A002
) -> Response:
    """The month's SLA report (default: the current month so far), as JSON or a
    self-contained HTML page."""
    chosen = month or services.clock.now().strftime("%Y-%m")
    report = await run_in_threadpool(services.slo.report, deployment, chosen)
    if format == "html":
        return HTMLResponse(services.slo.report_html(report))
    return JSONResponse(report.model_dump(mode="json"))


@router.get(f"{API_PREFIX}/cost", name="cost.report")
def cost(
    services: ServicesDep,
    _ctx: Reader,
    deployment: Annotated[str | None, Query(pattern=DEPLOYMENT_NAME_PATTERN)] = None,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
) -> CostReport:
    """Cost per 1,000 predictions, right-sizing hints and INT8-against-parent comparisons of
    a deployment (default: every deployment that served) over the last ``days``."""
    return services.slo.cost(deployment=deployment, days=days)
