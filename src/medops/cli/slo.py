"""``medops slo`` (status, the month's SLA report, objectives) and ``medops cost report``."""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import ValidationError

from medops.alerting.slo_schemas import SloConfig, SloStatus
from medops.cli.common import client, read_json_file
from medops.cli.output import JsonOption, console, print_json, print_table
from medops.errors import FieldError, InvalidInputError
from medops.files import private_folder, write_output

app = typer.Typer(
    help="Service-level objectives: status, error budgets, burn rates, the monthly SLA report.",
    no_args_is_help=True,
)
cost_app = typer.Typer(
    help="What serving costs: per 1,000 predictions, right-sizing, INT8 against its parent.",
    no_args_is_help=True,
)
UNDEFINED = "—"


def _pct(value: float | None, digits: int = 3) -> str:
    return UNDEFINED if value is None else f"{value * 100:.{digits}f}%"


def _rate(value: float | None) -> str:
    return UNDEFINED if value is None else f"{value:.2f}x"


def _rows(status: SloStatus) -> list[list[str]]:
    rows = []
    for item in status.objectives:
        paging = [b for b in item.burn if b.firing]
        rows.append(
            [
                status.deployment,
                item.objective.name,
                _pct(item.objective.target, 2),
                _pct(item.attainment),
                f"{item.total:,}",
                _pct(item.budget_remaining, 1),
                _rate(item.burn_rate_1h),
                ", ".join(f"{b.severity} {b.long_window}/{b.short_window}" for b in paging) or "no",
            ]
        )
    return rows


@app.command("status")
def status(
    deployment: str | None = typer.Argument(None, help="Deployment name; default: every one."),
    json_output: bool = JsonOption,
) -> None:
    """Each objective over its rolling period: attainment, budget left, the last hour's burn
    rate, and which burn-rate conditions hold."""
    api = client()
    statuses = [api.slo_status(deployment)] if deployment else api.slo_statuses()
    if json_output:
        print_json(statuses)
        return
    print_table(
        "Service-level objectives",
        ["deployment", "objective", "target", "attained", "events", "budget left", "burn 1h",
         "alerting"],
        [row for s in statuses for row in _rows(s)],
    )  # fmt: skip


@app.command("report")
def report(
    deployment: str = typer.Argument(..., help="Deployment name."),
    month: str | None = typer.Option(
        None, "--month", help="The month, YYYY-MM; default: the current month so far."
    ),
    out: Path = typer.Option(Path(), "--out", help="Folder for the report's HTML and JSON files."),
    json_output: bool = JsonOption,
) -> None:
    """Write the month's SLA report (objectives, attainment, budget, incidents) as a
    self-contained HTML page and as JSON into --out."""
    api = client()
    document = api.slo_report(deployment, month)
    page = api.slo_report_html(deployment, document.month)
    private_folder(out)
    stem = f"sla-{deployment}-{document.month}"
    json_path, html_path = out / f"{stem}.json", out / f"{stem}.html"
    write_output(json_path, document.model_dump_json(indent=2) + "\n")
    write_output(html_path, page)
    if json_output:
        print_json({"html": str(html_path), "json": str(json_path), "month": document.month})
        return
    missed = [o.objective.name for o in document.objectives if o.met is False]
    console.print(
        f"SLA report {deployment} {document.month}: "
        f"{'missed ' + ', '.join(missed) if missed else 'every objective met or without data'}, "
        f"{len(document.incidents)} incident(s)\nwrote {html_path} and {json_path.name}",
        markup=False,
    )


@app.command("set")
def set_objectives(
    scope: str = typer.Argument(..., help="Deployment name, or * for every deployment."),
    file: Path = typer.Option(
        ...,
        "--file",
        help="JSON document {period_days: 28|30, objectives: [{name, kind, target, ...}]}.",
    ),
    json_output: bool = JsonOption,
) -> None:
    """Store a new version of the objectives (needs alerts:configure); audited."""
    raw = read_json_file(file, "objectives file")
    try:
        config = SloConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "document"
        raise InvalidInputError(
            f"objectives file {file}: {where}: {first['msg']}",
            errors=[FieldError(where, first["msg"])],
        ) from None
    stored = client().set_slo_objectives(scope, config)
    if json_output:
        print_json(stored)
        return
    console.print(
        f"objectives of {stored.scope} are version {stored.version}: "
        + ", ".join(f"{o.name} {o.target:g}" for o in stored.objectives)
        + f" over {stored.period_days} days",
        markup=False,
    )


@cost_app.command("report")
def cost_report(
    deployment: str | None = typer.Option(
        None, "--deployment", help="One deployment; default: every one that served."
    ),
    days: int = typer.Option(30, "--days", min=1, max=366, help="The span: the last N days."),
    json_output: bool = JsonOption,
) -> None:
    """CPU seconds, GB-hours and GPU seconds per 1,000 predictions and their cost at the
    configured prices, with right-sizing hints and INT8 versions against their parents."""
    found = client().cost_report(deployment, days)
    if json_output:
        print_json(found)
        return
    currency = found.prices.currency
    rows = []
    for item in found.deployments:
        per = item.per_1000
        hint = item.rightsizing
        rows.append(
            [
                item.deployment,
                f"{item.predictions:,}",
                UNDEFINED if per is None else f"{per.cpu_seconds:.3f}",
                UNDEFINED if per is None else f"{per.gb_hours:.5f}",
                UNDEFINED if per is None else f"{per.gpu_seconds:.3f}",
                UNDEFINED if per is None else f"{per.cost:.6f} {currency}",
                UNDEFINED
                if hint is None
                else f"{hint.replicas} x {hint.cpu_request_millicores}m CPU",
            ]
        )
    print_table(
        f"Cost over the last {days} days",
        ["deployment", "predictions", "CPU s /1000", "GB-h /1000", "GPU s /1000", "cost /1000",
         "right size"],
        rows,
    )  # fmt: skip
    for item in found.deployments:
        for q in item.quantized:
            change = UNDEFINED if q.cost_change is None else f"{q.cost_change:+.1%}"
            console.print(
                f"{item.deployment}: {q.model} v{q.version} (INT8 of v{q.parent_version}) costs "
                f"{change} per 1,000 against its parent",
                markup=False,
            )
