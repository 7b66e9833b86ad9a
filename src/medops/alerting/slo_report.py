"""The monthly SLA report of one deployment, for a hospital committee: each objective's
attainment over the calendar month and the budget it left, the budget spent day by day, the
incidents (alerts that fired, who acknowledged and resolved them, when, and how many
notifications went out), and the month's volume and latency. JSON (``SlaReport``) and a
self-contained HTML page (inline SVG, the reports' one style sheet, no script)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from medops.alerting import slo
from medops.alerting.slo_data import config_in_force, quality_windows, read_minutes
from medops.alerting.slo_schemas import (
    Actor,
    DayAttainment,
    Incident,
    Objective,
    ReportObjective,
    SlaReport,
    parse_month,
)
from medops.core.svg import curve_plot, esc
from medops.registry.report_html import STYLE
from medops.serving.cost import Prices, deployment_cost
from medops.serving.usage import summarize

UNDEFINED = "—"


def month_span(month: str) -> tuple[datetime, datetime]:
    """The first instant of ``month`` (``YYYY-MM``) and of the next, in UTC."""
    year, number = parse_month(month)
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return start, end


def build_report(
    session: Session,
    deployment: str,
    month: str,
    now: datetime,
    incidents: Sequence[Incident],
    prices: Prices | None = None,
) -> SlaReport:
    """``deployment``'s report for ``month`` (up to ``now`` while the month runs)."""
    start, end = month_span(month)
    stop = min(end, now)
    config = config_in_force(session, deployment)
    counts = read_minutes(session, deployment, start, end)
    days = [start + timedelta(days=i) for i in range((end - start).days)]
    good: dict[str, list[int]] = {}
    total: dict[str, list[int]] = {}
    for objective in config.objectives:
        good[objective.name] = [0] * len(days)
        total[objective.name] = [0] * len(days)
        if objective.kind == "quality":
            for ended, ok in quality_windows(session, deployment, objective, start, end):
                index = min((ended - start).days, len(days) - 1)
                total[objective.name][index] += 1
                good[objective.name][index] += ok
            continue
        for minute in counts.requests:
            index = (minute - start).days
            bad, all_ = counts.bad_total(objective, minute)
            total[objective.name][index] += all_
            good[objective.name][index] += all_ - bad
    objectives = [
        _objective(objective, good[objective.name], total[objective.name])
        for objective in config.objectives
    ]
    usage = summarize(session, deployment, start, end)
    return SlaReport(
        deployment=deployment,
        month=month,
        start=start,
        end=stop,
        generated_at=now,
        objectives=objectives,
        days=[
            DayAttainment(
                day=day,
                good={name: values[i] for name, values in good.items()},
                total={name: values[i] for name, values in total.items()},
            )
            for i, day in enumerate(days)
            if day < stop
        ],
        incidents=list(incidents),
        requests=usage.requests,
        records=usage.records,
        p95_ms=usage.quantile_ms(0.95),
        p99_ms=usage.quantile_ms(0.99),
        cost=deployment_cost(session, deployment, start, stop, prices) if prices else None,
        currency=prices.currency if prices else None,
    )


def _objective(objective: Objective, good: list[int], total: list[int]) -> ReportObjective:
    state = slo.budget(sum(good), sum(total), objective.target)
    spent: list[float | None] = []
    bad_so_far = 0
    for g, t in zip(good, total, strict=True):
        bad_so_far += t - g
        spent.append(bad_so_far / state.allowed_bad if state.allowed_bad else None)
    return ReportObjective(
        objective=objective,
        good=state.good,
        total=state.total,
        attainment=state.attainment,
        met=None if state.attainment is None else state.attainment >= objective.target,
        budget_remaining=state.remaining,
        budget_spent_by_day=spent,
    )


# -- HTML ------------------------------------------------------------------------------------


def _pct(value: float | None, digits: int = 3) -> str:
    return UNDEFINED if value is None else f"{value * 100:.{digits}f}%"


def _when(value: datetime | None) -> str:
    return UNDEFINED if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def _table(head: Sequence[str], rows: Sequence[Sequence[object]], text_columns: int = 1) -> str:
    def cell(tag: str, index: int, value: object) -> str:
        css = ' class="text"' if index < text_columns else ""
        return f"<{tag}{css}>{esc(value)}</{tag}>"

    header = "".join(cell("th", i, h) for i, h in enumerate(head))
    body = "".join(
        "<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows
    )
    return f'<div class="scroll"><table><tr>{header}</tr>{body}</table></div>'


def _describe(objective: Objective) -> str:
    if objective.kind == "availability":
        return "predict requests answered without a server error"
    if objective.kind == "latency":
        return f"predict requests answered within {objective.threshold_ms:g} ms"
    floor = (
        f" and accuracy at least {objective.accuracy_floor:g}"
        if objective.accuracy_floor is not None
        else ""
    )
    return f"{objective.window_kind} monitoring windows judged stable{floor}"


def _budget_plot(report: SlaReport, item: ReportObjective) -> str:
    spent = item.budget_spent_by_day[: len(report.days)]
    points = [(i, s) for i, s in enumerate(spent) if s is not None]
    days = max(len(item.budget_spent_by_day) - 1, 1)
    return curve_plot(
        [(i + 1) / (days + 1) for i, _ in points],
        [min(s, 1.0) for _, s in points],
        title=f"{item.objective.name}: error budget spent",
        x_label="day of the month",
        y_label="share of the month's budget",
        baseline=1.0,
    )


def render_html(report: SlaReport) -> str:
    """The report as one self-contained HTML5 document."""
    title = f"SLA report: {report.deployment}, {report.month}"
    meta = _table(
        ("", ""),
        [
            ("Deployment", report.deployment),
            ("Month", report.month),
            ("Covers", f"{_when(report.start)} to {_when(report.end)}"),
            ("Generated", _when(report.generated_at)),
            ("Predict requests", f"{report.requests:,}"),
            ("Predictions", f"{report.records:,}"),
            ("Latency p95 / p99", f"{_ms(report.p95_ms)} / {_ms(report.p99_ms)}"),
        ],
        text_columns=2,
    )
    objectives = _table(
        ("Objective", "Promise", "Target", "Attained", "Good / all", "Met", "Budget left"),
        [
            (
                o.objective.name,
                _describe(o.objective),
                _pct(o.objective.target, 2),
                _pct(o.attainment),
                f"{o.good:,} / {o.total:,}",
                UNDEFINED if o.met is None else ("yes" if o.met else "NO"),
                _pct(o.budget_remaining, 1),
            )
            for o in report.objectives
        ],
        text_columns=2,
    )
    plots = "".join(_budget_plot(report, o) for o in report.objectives)
    incidents = (
        _table(
            (
                "Alert",
                "Severity",
                "Fired",
                "Acknowledged",
                "Resolved",
                "Minutes open",
                "Notifications",
            ),
            [
                (
                    i.name,
                    i.severity,
                    _when(i.started),
                    _actor(i.acknowledged),
                    _actor(i.resolved),
                    UNDEFINED if i.minutes_open is None else f"{i.minutes_open:.0f}",
                    i.notifications,
                )
                for i in report.incidents
            ],
            text_columns=5,
        )
        if report.incidents
        else "<p>No alert fired this month.</p>"
    )
    names = [o.objective.name for o in report.objectives]
    daily = _table(
        ("Day", *names),
        [
            (
                day.day.strftime("%Y-%m-%d"),
                *(
                    _pct(day.good[n] / day.total[n], 2) if day.total.get(n) else UNDEFINED
                    for n in names
                ),
            )
            for day in report.days
        ],
    )
    body = (
        meta
        + "<h2>Objectives</h2>"
        + objectives
        + "<h2>Error budget through the month</h2>"
        + f'<div class="plots">{plots}</div>'
        + "<h2>Incidents</h2>"
        + incidents
        + "<h2>Day by day</h2>"
        + daily
        + _cost_section(report)
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head>"
        f"<body><h1>{esc(title)}</h1>{body}</body></html>\n"
    )


def _cost_section(report: SlaReport) -> str:
    cost = report.cost
    if cost is None:
        return ""
    per = cost.per_1000
    rows: list[tuple[str, str]] = [
        ("CPU seconds", f"{cost.cpu_seconds:,.1f}"),
        ("Memory (GB-hours)", f"{cost.gb_hours:,.3f}"),
        ("GPU seconds", f"{cost.gpu_seconds:,.1f}"),
        ("Cost", f"{cost.cost:,.4f} {report.currency or ''}".rstrip()),
    ]
    if per is not None:
        rows.append(("Cost per 1,000 predictions", f"{per.cost:,.6f} {report.currency or ''}"))
        rows.append(("CPU seconds per 1,000 predictions", f"{per.cpu_seconds:,.3f}"))
    if cost.rightsizing is not None:
        hint = cost.rightsizing
        rows.append(
            ("Right size", f"{hint.replicas} replica(s) x {hint.cpu_request_millicores}m CPU")
        )
    rows.extend(
        (
            f"v{q.version} (INT8 of v{q.parent_version}) against its parent",
            UNDEFINED if q.cost_change is None else f"{q.cost_change:+.1%} per 1,000",
        )
        for q in cost.quantized
    )
    return "<h2>Cost</h2>" + _table(("", ""), rows)


def _ms(value: float | None) -> str:
    return UNDEFINED if value is None else f"{value:.0f} ms"


def _actor(actor: Actor | None) -> str:
    if actor is None:
        return UNDEFINED
    return f"{actor.by or 'system'}, {_when(actor.at)}"
