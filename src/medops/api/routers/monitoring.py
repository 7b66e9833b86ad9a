"""Monitoring over HTTP: run the due windows, read results and window reports, read and set
each deployment's monitoring configuration."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import AwareDatetime, BaseModel, Field
from starlette.concurrency import run_in_threadpool

from medops.api.console import report_file
from medops.api.deps import API_PREFIX, ServicesDep, require
from medops.context import Context
from medops.core.permissions import Permission
from medops.core.windows import WINDOW_HELP, WINDOW_PATTERN
from medops.monitoring.schemas import MonitoringConfigIn, MonitoringConfigOut
from medops.serving.schemas import DEPLOYMENT_NAME_PATTERN

router = APIRouter(tags=["monitoring"])
Reader = Annotated[Context, Depends(require(Permission.MONITORING_READ))]
Runner = Annotated[Context, Depends(require(Permission.MONITORING_RUN))]
Configurer = Annotated[Context, Depends(require(Permission.MONITORING_CONFIGURE))]
Window = Annotated[str, Query(pattern=WINDOW_PATTERN, description=WINDOW_HELP)]
Name = Annotated[str, Query(pattern=DEPLOYMENT_NAME_PATTERN)]


class RunRequest(BaseModel):
    """Which windows to compute (all that are complete and not computed yet)."""

    window: str = Field(default="day", pattern=WINDOW_PATTERN, description=WINDOW_HELP)


@router.post(f"{API_PREFIX}/monitoring/run", name="monitoring.run")
async def run_monitoring(body: RunRequest, services: ServicesDep, ctx: Runner) -> dict[str, Any]:
    """Compute every due window of every deployed version, and compute again the windows
    whose outcomes arrived since; answers what was computed, updated and skipped (with why)."""
    summary = await run_in_threadpool(services.monitoring.run, ctx, body.window)
    return {
        "window": summary.window,
        "computed": summary.computed,
        "updated": summary.updated,
        "skipped": summary.skipped,
        "pending": summary.pending,
        "logged": summary.logged,
    }


@router.get(f"{API_PREFIX}/monitoring/results", name="monitoring.results")
def monitoring_results(
    deployment: Name,
    services: ServicesDep,
    _ctx: Reader,
    window: Window = "day",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """The deployment's computed windows, newest first: verdict, drift and alerts of each."""
    return [found.dump() for found in services.monitoring.results(deployment, window, limit=limit)]


@router.get(
    f"{API_PREFIX}/monitoring/report",
    name="monitoring.report",
    response_model=None,
    responses={200: {"content": {"application/json": {}, "text/html": {}}}},
)
def monitoring_report(
    request: Request,
    deployment: Name,
    services: ServicesDep,
    _ctx: Reader,
    window: Annotated[
        str | None, Query(pattern=WINDOW_PATTERN, description="default: any kind")
    ] = None,
    start: Annotated[AwareDatetime | None, Query()] = None,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    sequence: Annotated[int | None, Query(ge=0, le=2**62)] = None,
) -> Response:
    """One window's full document: the latest computed one of any kind, unless ``window``,
    ``start``, ``version`` or ``sequence`` (a count window's number) select another; HTML
    with plots when the request accepts ``text/html``."""
    document = services.monitoring.document(
        deployment, window, start, version=version, sequence=sequence
    )
    if "text/html" in request.headers.get("accept", ""):
        return HTMLResponse(report_file.render(document))
    return JSONResponse(document.dump())


@router.get(f"{API_PREFIX}/monitoring/config", name="monitoring.config")
def monitoring_config(deployment: Name, services: ServicesDep, _ctx: Reader) -> MonitoringConfigOut:
    """The deployment's monitoring configuration: the defaults until one is set."""
    return services.monitoring_config.get(deployment)


@router.put(f"{API_PREFIX}/monitoring/config", name="monitoring.configure")
def configure_monitoring(
    body: MonitoringConfigIn, services: ServicesDep, ctx: Configurer
) -> MonitoringConfigOut:
    """Replace the deployment's monitoring configuration (fields left out take their
    defaults); audited with before and after. Later runs apply it; stored windows stay,
    unless outcomes arrive for them."""
    return services.monitoring_config.set(ctx, body)
