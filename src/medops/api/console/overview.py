"""The start page and the overview: every deployment with its live figures, what it serves,
its canary, its latest monitoring verdict and the alerts of that window."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from medops.api.console.errors import CONSOLE_TAG
from medops.api.console.layout import badge, cell, link, page, sections_for, table, viewer_of
from medops.api.console.window import window_href
from medops.api.deps import ServicesDep, require
from medops.context import Context
from medops.core.permissions import Permission
from medops.core.svg import esc
from medops.monitoring.results import WindowSummary
from medops.serving.runtime import ServingRuntime
from medops.serving.schemas import ArmStats, DeploymentOut

router = APIRouter(include_in_schema=False, tags=[CONSOLE_TAG])
Self = Annotated[Context, Depends(require(Permission.SELF))]
Read = Annotated[Context, Depends(require(Permission.DEPLOYMENTS_READ))]


@router.get("/", name="console.home")
def home(ctx: Self) -> Response:
    """The first page the viewer's role may open."""
    sections = sections_for(viewer_of(ctx))
    return RedirectResponse(sections[0].href if sections else "/account", status_code=303)


def _arm_rows(deployment: DeploymentOut) -> list[tuple[str, ArmStats]]:
    return sorted(deployment.live.items())


def _live_cells(deployment: DeploymentOut) -> list[str]:
    arms = _arm_rows(deployment)
    if not arms:
        return ["—", "—", "—", "—"]

    def lines(values: list[str]) -> str:
        return "<br>".join(values)

    rate = lines([f"{esc(a)}: {cell(s.rate_per_second, 2)}" for a, s in arms])
    p50 = lines([cell(s.p50_ms, 1) for _, s in arms])
    p99 = lines([cell(s.p99_ms, 1) for _, s in arms])
    errors = lines([cell(None if s.error_rate is None else 100 * s.error_rate, 2) for _, s in arms])
    return [rate, p50, p99, errors]


def _verdict(summary: WindowSummary | None) -> list[str]:
    if summary is None:
        return ['<span class="empty">no window yet</span>', "—"]
    where = window_href(summary)
    label = f"{summary.window} ending {summary.end[:16]}"
    verdict = f'{badge(summary.verdict)} <a href="{esc(where)}">{esc(label)}</a>'
    alerts = "<br>".join(esc(a) for a in summary.alerts) if summary.alerts else "none"
    return [verdict, alerts]


@router.get("/deployments", name="console.overview", response_class=HTMLResponse)
async def overview(request: Request, services: ServicesDep, ctx: Read) -> Response:
    """Deployments at a glance: traffic, latency and errors as this server saw them in the
    last minutes, canary share, and the latest monitoring verdict with its alerts."""
    actor = viewer_of(ctx)
    runtime: ServingRuntime = request.app.state.runtime
    deployments = await run_in_threadpool(services.deployments.all)
    for deployment in deployments:
        deployment.live = runtime.live(deployment.name)
    monitoring = actor.can(Permission.MONITORING_READ)
    latest = (
        await run_in_threadpool(services.monitoring.latest, [d.name for d in deployments])
        if monitoring
        else {}
    )
    rows = []
    for d in deployments:
        canary = (
            f"v{d.canary_version} at {d.canary_percent}%" if d.canary_version is not None else "—"
        )
        shadow = f"v{d.shadow_version}" if d.shadow_version is not None else "—"
        name = link(f"/deployments/{d.name}", d.name) if monitoring else esc(d.name)
        model = (
            link(f"/models/{d.model}", d.model)
            if actor.can(Permission.MODELS_READ)
            else esc(d.model)
        )
        row = [name, model, cell(d.target), cell(None if d.version is None else f"v{d.version}"),
               esc(canary), esc(shadow), *_live_cells(d)]  # fmt: skip
        if monitoring:
            row += _verdict(latest.get(d.name))
        rows.append(row)
    headers = ["deployment", "model", "serves", "version", "canary", "shadow",
               "requests/s", "p50 ms", "p99 ms", "errors %"]  # fmt: skip
    if monitoring:
        headers += ["latest verdict", "alerts"]
    body = table(
        headers,
        rows,
        caption="Live figures are this server process's, per arm, over its last records "
        "(rate: last five minutes).",
        numeric=(7, 8, 9),
        empty="No deployment yet: 'medops deploy create NAME MODEL@production'.",
    )
    return page("Overview", body, actor=actor, active="overview")
