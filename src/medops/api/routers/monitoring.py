"""Monitoring over HTTP: run the due windows, read results and window reports."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import AwareDatetime, BaseModel, Field
from starlette.concurrency import run_in_threadpool

from medops.api.deps import API_PREFIX, ServicesDep, require
from medops.auth.permissions import Permission
from medops.context import Context
from medops.monitoring import report_html
from medops.serving.schemas import DEPLOYMENT_NAME_PATTERN

router = APIRouter(tags=["monitoring"])
Reader = Annotated[Context, Depends(require(Permission.MONITORING_READ))]
Runner = Annotated[Context, Depends(require(Permission.MONITORING_RUN))]
Window = Literal["hour", "day", "week"]
Name = Annotated[str, Query(pattern=DEPLOYMENT_NAME_PATTERN)]


class RunRequest(BaseModel):
    """Which windows to compute (all that are complete and not computed yet)."""

    window: Window = Field(default="day", description="hour, day or week (UTC)")


@router.post(f"{API_PREFIX}/monitoring/run", name="monitoring.run")
async def run_monitoring(body: RunRequest, services: ServicesDep, ctx: Runner) -> dict[str, Any]:
    """Compute every due window of every deployed version; answers what was computed and
    what was skipped (with why)."""
    summary = await run_in_threadpool(services.monitoring.run, ctx, body.window)
    return {"window": summary.window, "computed": summary.computed, "skipped": summary.skipped}


@router.get(f"{API_PREFIX}/monitoring/results", name="monitoring.results")
def monitoring_results(
    deployment: Name,
    services: ServicesDep,
    _ctx: Reader,
    window: Annotated[Window, Query()] = "day",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """The deployment's computed windows, newest first: verdict, drift and alerts of each."""
    return services.monitoring.results(deployment, window, limit=limit)


@router.get(f"{API_PREFIX}/monitoring/report", name="monitoring.report", response_model=None)
def monitoring_report(
    request: Request,
    deployment: Name,
    services: ServicesDep,
    _ctx: Reader,
    window: Annotated[Window, Query()] = "day",
    start: Annotated[AwareDatetime | None, Query()] = None,
) -> Response:
    """One window's full document (the latest by default); HTML with plots when the request
    accepts ``text/html``."""
    document = services.monitoring.document(deployment, window, start)
    if "text/html" in request.headers.get("accept", ""):
        return HTMLResponse(report_html.render(document))
    return JSONResponse(document)
