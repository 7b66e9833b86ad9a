"""The service-level page (``slo:read``): every deployment's objectives with their error
budgets and burn rates, a link to each month's SLA report, and what serving costs.

The objectives come from ``SloService.statuses`` (rolling 28 or 30 days over every replica's
usage rows and the monitoring windows), the cost from ``SloService.cost`` over the same days
at the installation's prices. The SLA report link opens the API's own HTML report
(``/api/v1/slo/{deployment}/report``), so the page and the committee's document are one.
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from medops.alerting.slo_schemas import ObjectiveStatus, SloStatus
from medops.api.console.errors import CONSOLE_TAG
from medops.api.console.layout import badge, cell, link, notice, page, section, table, viewer_of
from medops.api.deps import ServicesDep, require
from medops.context import Context
from medops.core.permissions import Permission
from medops.core.svg import esc
from medops.serving.cost_schemas import CostReport, DeploymentCost

router = APIRouter(include_in_schema=False, tags=[CONSOLE_TAG])
Reader = Annotated[Context, Depends(require(Permission.SLO_READ))]
COST_DAYS: Final = 30
OBJECTIVE_HEADERS: Final = ["deployment", "objective", "target", "attained %", "", "bad / all",
                            "budget", "burn 1h", "burn alerts", "SLA report"]  # fmt: skip
COST_HEADERS: Final = ["deployment", "predictions", "CPU s /1k", "GB-h /1k", "GPU s /1k",
                       "cost /1k", "cost", "right-size", "INT8 against parent"]  # fmt: skip


def _target(objective: ObjectiveStatus) -> str:
    o = objective.objective
    goal = f"{100 * o.target:g}%"
    if o.kind == "latency":
        return f"{goal} under {o.threshold_ms:g} ms"
    if o.kind == "quality" and o.accuracy_floor is not None:
        return f"{goal} stable windows, accuracy ≥ {o.accuracy_floor:g}"
    if o.kind == "quality":
        return f"{goal} stable windows"
    return f"{goal} not failed"


def _met(objective: ObjectiveStatus) -> str:
    if objective.met is None:
        return badge("no events", "muted")
    return badge("met", "ok") if objective.met else badge("missed", "bad")


def _budget(objective: ObjectiveStatus) -> str:
    left = objective.budget_remaining
    if left is None:
        return "—"
    tone = "ok" if left > 0.5 else "warn" if left > 0 else "bad"
    return badge(f"{100 * left:.1f}% left", tone)


def _burn(objective: ObjectiveStatus) -> str:
    firing = [f"{b.severity} {b.long_window}/{b.short_window}" for b in objective.burn if b.firing]
    if firing:
        return " ".join(badge(text, "bad") for text in firing)
    return '<span class="empty">none</span>' if objective.burn else "—"


def _objective_rows(statuses: list[SloStatus], month: str) -> list[list[str]]:
    rows = []
    for status in statuses:
        report = link(
            f"/api/v1/slo/{status.deployment}/report", f"{month} report", month=month, format="html"
        )
        for index, o in enumerate(status.objectives):
            first = index == 0
            rows.append(
                [
                    link(f"/deployments/{status.deployment}", status.deployment) if first else "",
                    esc(o.objective.name),
                    esc(_target(o)),
                    cell(None if o.attainment is None else 100 * o.attainment, 3),
                    _met(o),
                    f"{o.bad:,} / {o.total:,}",
                    _budget(o),
                    cell(o.burn_rate_1h, 2),
                    _burn(o),
                    report if first else "",
                ]
            )
    return rows


def _hint(cost: DeploymentCost) -> str:
    sizing = cost.rightsizing
    if sizing is None:
        return "—"
    memory = f", {sizing.memory_request_mb} MB" if sizing.memory_request_mb else ""
    return esc(
        f"{sizing.replicas} replica(s) × {sizing.cpu_request_millicores}m CPU{memory} "
        f"(peak {sizing.peak_requests_per_second:.1f} req/s)"
    )


def _quantized(cost: DeploymentCost) -> str:
    lines = []
    for q in cost.quantized:
        change = "—" if q.cost_change is None else f"{100 * q.cost_change:+.0f}% cost"
        speed = "" if q.offline_speedup is None else f", {q.offline_speedup:.2f}× offline"
        lines.append(esc(f"v{q.version} (INT8 of v{q.parent_version}): {change}{speed}"))
    return "<br>".join(lines) if lines else "—"


def _cost_rows(report: CostReport) -> list[list[str]]:
    currency = report.prices.currency
    rows = []
    for c in report.deployments:
        per = c.per_1000
        rows.append(
            [
                esc(c.deployment),
                f"{c.predictions:,}",
                cell(None if per is None else per.cpu_seconds, 3),
                cell(None if per is None else per.gb_hours, 5),
                cell(None if per is None else per.gpu_seconds, 3),
                esc(f"{per.cost:.4f} {currency}") if per is not None else "—",
                esc(f"{c.cost:.2f} {currency}"),
                _hint(c),
                _quantized(c),
            ]
        )
    return rows


@router.get("/slo", name="console.slo", response_class=HTMLResponse)
async def slo_page(services: ServicesDep, ctx: Reader) -> Response:
    """Objectives, error budgets and burn rates of every deployment; the cost of serving."""
    actor = viewer_of(ctx)
    statuses = await run_in_threadpool(services.slo.statuses)
    cost = await run_in_threadpool(lambda: services.slo.cost(days=COST_DAYS))
    month = services.clock.now().strftime("%Y-%m")
    missed = sum(o.met is False for s in statuses for o in s.objectives)
    body = (
        notice(f"{missed} objective(s) missed over their rolling period.", "warn") if missed else ""
    )
    body += section(
        "Objectives and error budgets",
        table(
            [
                "deployment",
                "objective",
                "target",
                "attained %",
                "",
                "bad / all",
                "budget",
                "burn 1h",
                "burn alerts",
                "SLA report",
            ],
            _objective_rows(statuses, month),
            caption="Over each deployment's rolling period (28 or 30 days). Burn alerts: the "
            "multi-window conditions that hold now (page at 14.4x over 1 h and 5 min or 6x over "
            "6 h and 30 min; ticket at 1x over 3 days and 6 h).",
            numeric=(3, 5, 7),
            empty="No deployment yet.",
        ),
        anchor="objectives",
    )
    prices = cost.prices
    body += section(
        f"Cost over the last {COST_DAYS} days",
        table(
            [
                "deployment",
                "predictions",
                "CPU s /1k",
                "GB-h /1k",
                "GPU s /1k",
                "cost /1k",
                "cost",
                "right-size",
                "INT8 against parent",
            ],
            _cost_rows(cost),
            caption=f"Measured by each server process; priced at {prices.cpu_hour:g} per "
            f"CPU-hour, {prices.gb_hour:g} per GB-hour, {prices.gpu_hour:g} per GPU-hour "
            f"({prices.currency}; MEDOPS_PRICE_*).",
            numeric=(1, 2, 3, 4, 5, 6),
            empty="Nothing served in the span.",
        ),
        anchor="cost",
    )
    return page("Service levels and cost", body, actor=actor, active="slo")
