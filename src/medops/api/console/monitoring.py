"""A deployment's monitoring page: what it serves, its actions, and its windows over time.

Every chart reads the series' stored trend (``MonitoringService.trend``: the charted numbers
stored beside each window's document, monitoring/trend.py), never the prediction log and never
the documents, so 90 days of hourly windows draw in tens of milliseconds. The selectors are
plain links and a GET form (the page is deep-linkable): window kind, version (primary or
canary), time range, and the drift test charted per feature. Each chart has a table view of
the latest ``TABLE_WINDOWS`` windows; ``/deployments/{name}/trend.csv`` with the same query
holds every number of every window.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Final
from urllib.parse import urlencode

import numpy as np
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from medops.api.console import charts
from medops.api.console.charts import Axis, Band, Line
from medops.api.console.errors import CONSOLE_TAG
from medops.api.console.layout import (
    action_form,
    badge,
    cell,
    definitions,
    field,
    link,
    notice,
    page,
    section,
    table,
    viewer_of,
    when,
)
from medops.api.deps import ServicesDep, require
from medops.context import Actor, Context
from medops.core.permissions import Permission
from medops.core.svg import esc
from medops.core.windows import count_size
from medops.errors import InvalidInputError, NotFoundError
from medops.monitoring.drift_tests import BY_NAME
from medops.monitoring.trend import Trend, is_p_value
from medops.services import Services
from medops.serving.schemas import DEPLOYMENT_NAME_PATTERN, DeploymentOut

router = APIRouter(include_in_schema=False, tags=[CONSOLE_TAG])
Read = Annotated[Context, Depends(require(Permission.MONITORING_READ))]
Param = Annotated[str | None, Query()]
Span = Annotated[str | None, Query(alias="range")]
RANGES: Final = {"7": 7, "30": 30, "90": 90, "all": None}
RANGE_LABELS: Final = {"7": "last 7 days", "30": "last 30 days", "90": "last 90 days", "all": "all"}
DEFAULT_RANGE: Final = "30"
TABLE_WINDOWS: Final = 48
KIND_ORDER: Final = {"hour": 0, "day": 1, "week": 2}


@dataclass(frozen=True)
class View:
    """What the page shows, as chosen by its query (validated) or by default."""

    name: str
    kind: str
    version: int
    range: str
    test: str | None
    kinds: tuple[str, ...]
    versions: tuple[int, ...]
    links: dict[int, str] = dataclasses.field(
        default_factory=dict, compare=False
    )  # made once per page

    def query(self, **changes: object) -> dict[str, object]:
        base: dict[str, object] = {
            "window": self.kind,
            "version": self.version,
            "range": self.range,
            "test": self.test,
        }
        base.update(changes)
        return {k: v for k, v in base.items() if v is not None}

    def href(self, path: str = "", **changes: object) -> str:
        return f"/deployments/{self.name}{path}?{urlencode(self.query(**changes))}"

    def window_href(self, sequence: int) -> str:
        return f"/deployments/{self.name}/windows/{self.kind}/{self.version}/{sequence}"


def _choose(
    services: Services,
    deployment: DeploymentOut,
    window: str | None,
    version: str | None,
    range_: str | None,
    test: str | None,
) -> View | None:
    """The view the query asks for (a 4xx for a value that names nothing), or None when the
    deployment has no window yet."""
    range_key = DEFAULT_RANGE if range_ is None else range_
    if range_key not in RANGES:
        raise InvalidInputError(f"unknown range {range_!r}: use one of {', '.join(RANGES)}")
    if test is not None and test not in BY_NAME:
        raise InvalidInputError(f"unknown drift test {test!r}: use one of {', '.join(BY_NAME)}")
    if window is not None:
        count_size(window)  # a clear error for a kind that does not exist at all
    number: int | None = None
    if version is not None:
        if not version.isascii() or not version.isdigit() or int(version) < 1:
            raise InvalidInputError(f"version must be a whole number from 1, not {version!r}")
        number = int(version)
    series = services.monitoring.series(deployment.name)
    if not series:
        return None
    kinds = tuple(sorted({k for k, _ in series}, key=lambda k: (KIND_ORDER.get(k, 3), k)))
    kind = window or ("day" if "day" in kinds else kinds[0])
    if kind not in kinds:
        msg = f"deployment {deployment.name} has no {kind} windows; it has {', '.join(kinds)}"
        raise NotFoundError(msg)
    versions = tuple(sorted(v for k, v in series if k == kind))
    if number is None:
        number = deployment.version if deployment.version in versions else versions[-1]
    if number not in versions:
        shown = ", ".join(str(v) for v in versions)
        raise NotFoundError(f"version {number} has no {kind} windows here; versions: {shown}")
    return View(deployment.name, kind, number, range_key, test, kinds, versions)


def _trend(services: Services, view: View) -> Trend:
    days = RANGES[view.range]
    since = None if days is None else services.clock.now() - timedelta(days=days)
    return services.monitoring.trend(view.name, view.kind, view.version, since)


def _axis(view: View, trend: Trend) -> Axis:
    is_time = count_size(view.kind) is None
    if is_time:
        xs = np.array([e.timestamp() for e in trend.ends], dtype=np.float64)
    else:
        xs = trend.sequences.astype(np.float64)
    return Axis(xs, is_time, [view.window_href(int(s)) for s in trend.sequences.tolist()])


# --- pieces of the page --------------------------------------------------------------------


def _header(deployment: DeploymentOut, actor: Actor) -> str:
    model = (
        link(f"/models/{deployment.model}", deployment.model)
        if actor.can(Permission.MODELS_READ)
        else esc(deployment.model)
    )
    canary = (
        f"v{deployment.canary_version} at {deployment.canary_percent}%"
        if deployment.canary_version is not None
        else "none"
    )
    return definitions(
        [
            ("model", model),
            ("target", esc(deployment.target)),
            ("serves", cell(None if deployment.version is None else f"v{deployment.version}")),
            ("canary", esc(canary)),
            (
                "shadow",
                esc(
                    "none" if deployment.shadow_version is None else f"v{deployment.shadow_version}"
                ),
            ),
        ]
    )


def _reason(name: str) -> str:
    return field(
        f"{name}-reason",
        "Reason (recorded in the audit trail)",
        required=True,
        hint="at least 3 characters",
    )


def _actions(deployment: DeploymentOut) -> str:
    api = f"/api/v1/deployments/{deployment.name}"
    here = f"/deployments/{deployment.name}"
    forms = [
        action_form(
            f"{api}/rollback",
            _reason("rollback"),
            submit="Roll back",
            redirect=here,
            danger=True,
            confirm=(
                f"Roll back {deployment.name}? A canary ends at once; without one the "
                "deployment moves back to the version it served before."
            ),
        ),
        action_form(
            f"{api}/canary",
            field(
                "canary-version",
                "Canary version",
                kind="number",
                value=str(deployment.canary_version or ""),
                json_type="number",
                hint="the candidate version; empty keeps the current canary",
            )
            + field(
                "canary-percent",
                "Percent of records",
                kind="number",
                value=str(deployment.canary_percent),
                required=True,
                json_type="number",
                hint="0 to 100; 0 ends the canary",
            )
            + _reason("canary"),
            submit="Set canary",
            method="PUT",
            redirect=here,
        ),
    ]
    if deployment.canary_version is not None:
        forms.append(
            action_form(
                f"{api}/canary",
                '<input type="hidden" name="percent" value="0" data-json="number">'
                + _reason("end-canary"),
                submit="End canary",
                method="PUT",
                redirect=here,
                danger=True,
                confirm=f"End the canary of v{deployment.canary_version}?",
            )
        )
    if deployment.shadow_version is not None:
        forms.append(
            action_form(
                f"{api}/shadow",
                _reason("shadow"),
                submit=f"End shadow of v{deployment.shadow_version}",
                method="PUT",
                redirect=here,
                confirm=f"Stop scoring copies with v{deployment.shadow_version}?",
            )
        )
    body = "".join(_named(f) for f in forms)
    return section("Actions", f'<div class="grid2">{body}</div>', anchor="actions")


def _named(form: str) -> str:
    """Field ids are unique on the page; the API's field names are the part after the
    form's prefix (``canary-percent`` is sent as ``percent``)."""
    return re.sub(r'name="[a-z-]*?-?(reason|percent|version)"', r'name="\1"', form)


def _selectors(view: View, tests: list[str]) -> str:
    def tabs(label: str, items: list[tuple[str, str, bool]]) -> str:
        current = ' aria-current="page"'
        links = "".join(
            f'<li><a href="{esc(href)}"{current if on else ""}>{esc(text)}</a></li>'
            for text, href, on in items
        )
        return f'<nav aria-label="{esc(label)}"><ul class="tabs">{links}</ul></nav>'

    kinds = tabs(
        "Window kind", [(k, view.href(window=k, version=None), k == view.kind) for k in view.kinds]
    )
    versions = tabs(
        "Version", [(f"v{v}", view.href(version=v), v == view.version) for v in view.versions]
    )
    ranges = tabs(
        "Time range", [(RANGE_LABELS[r], view.href(range=r), r == view.range) for r in RANGES]
    )
    hidden = "".join(
        f'<input type="hidden" name="{k}" value="{esc(v)}">'
        for k, v in view.query(test=None).items()
    )
    options = "".join(
        f'<option value="{esc(t)}"{" selected" if t == view.test else ""}>{esc(t)}</option>'
        for t in tests
    )
    form = (
        f'<form class="filters" method="get" action="/deployments/{esc(view.name)}">{hidden}'
        '<div class="field"><label for="f-test">Drift statistic per feature</label>'
        f'<select id="f-test" name="test"><option value="">as judged</option>{options}'
        '</select></div><button type="submit">Show</button></form>'
    )
    return kinds + versions + ranges + form


def _figure(chart: str, caption: str, numbers: str) -> str:
    return (
        f'<figure class="chart">{chart}<figcaption>{esc(caption)}</figcaption>'
        f'<details class="numbers"><summary>Table view</summary>{numbers}</details></figure>'
    )


def _latest(trend: Trend) -> list[int]:
    """The indexes of the windows a table view shows: the latest, newest first."""
    n = len(trend)
    return list(range(n - 1, max(n - TABLE_WINDOWS, 0) - 1, -1))


def _numbers(
    view: View, trend: Trend, columns: list[tuple[str, np.ndarray]], *, digits: int = 4
) -> str:
    """The latest TABLE_WINDOWS windows' numbers, newest first, each linking its page."""
    latest = _latest(trend)
    cells = [_column(values[latest], digits) for _, values in columns]
    rows = [[_window_link(view, trend, i), *row] for i, *row in zip(latest, *cells, strict=True)]
    headers = [
        "window end" if count_size(view.kind) is None else "window",
        *(h for h, _ in columns),
    ]
    caption = f"Latest {len(latest)} of {len(trend)} windows, newest first."
    return table(headers, rows, caption=caption, numeric=tuple(range(1, len(headers))))


def _window_link(view: View, trend: Trend, i: int) -> str:
    """A link to window ``i``'s page (made once per page: every table view repeats it)."""
    found = view.links.get(i)
    if found is None:
        label = when(trend.ends[i]) if count_size(view.kind) is None else f"#{trend.sequences[i]}"
        href = esc(view.window_href(int(trend.sequences[i])))
        found = view.links[i] = f'<a href="{href}">{esc(label)}</a>'
    return found


def _column(values: np.ndarray, digits: int) -> list[str]:
    """Table cells of numbers (as ``cell`` writes them) or of drifted flags."""
    if values.dtype == np.bool_:
        return ["drifted" if v else "no" for v in values.tolist()]
    return [
        f"{v:.{digits}f}" if math.isfinite(v) else cell(None if math.isnan(v) else v)
        for v in values.astype(np.float64).tolist()
    ]


def _value(value: object, digits: int) -> str:
    return _column(np.array([value]), digits)[0]


def _flags(trend: Trend, *key: str) -> np.ndarray:
    return np.nan_to_num(trend.get(*key), nan=0.0) > 0.5


def _verdicts(view: View, trend: Trend, axis: Axis) -> str:
    strip = charts.verdict_strip(f"Verdict per {view.kind} window", axis, trend.verdicts)
    share = trend.get("dataset", "share")
    chart = charts.series_chart(
        "Share of drifted features",
        axis,
        [Line("share drifted", share)],
        y_label="share of features",
        flags=_flags(trend, "dataset", "drifted"),
        flag_label="dataset drifted",
        y_range=(0.0, 1.0),
    )
    n = len(trend)
    rows = [
        [
            _window_link(view, trend, i),
            badge(trend.verdicts[i]),
            esc(trend.statuses[i]),
            cell(int(trend.rows[i])),
            cell(int(trend.labelled[i])),
            _value(share[i], 3),
        ]
        for i in range(n - 1, max(n - TABLE_WINDOWS, 0) - 1, -1)
    ]
    numbers = table(
        ["window end", "verdict", "status", "rows", "labelled", "share drifted"],
        rows,
        caption=f"Latest {min(n, TABLE_WINDOWS)} of {n} windows, newest first.",
        numeric=(3, 4, 5),
    )
    return section(
        "Verdicts",
        _figure(
            strip,
            "Each window's verdict (the worst per pixel column); each links to its window.",
            numbers,
        )
        + _figure(
            chart, "Share of features judged drifted; marked windows drifted as a dataset.", ""
        ),
        anchor="verdicts",
    )


def _test_chart(view: View, trend: Trend, axis: Axis, group: str, name: str, test: str) -> str:
    value = trend.get(group, name, test, "value")
    limit = trend.get(group, name, test, "limit")
    p_value = is_p_value(test)
    what = "p-value" if p_value else BY_NAME[test].statistic if test in BY_NAME else test
    limit_label = "alpha" if p_value else "effective threshold"
    lines = [Line(f"{test} {'p-value' if p_value else 'statistic'}", value, "s0")]
    if np.isfinite(limit).any():
        lines.append(Line(limit_label, limit, "limit"))
    y_label = f"{test} p-value (drifted below alpha)" if p_value else f"{test}: {what}"
    chart = charts.series_chart(
        f"{name}: {test}",
        axis,
        lines,
        y_label=y_label[:60],
        flags=_flags(trend, group, name, test, "drifted"),
        y_range=(0.0, 1.0) if p_value else None,
    )
    numbers = _numbers(
        view,
        trend,
        [
            ("p-value" if p_value else "statistic", value),
            (limit_label, limit),
            ("drifted", _flags(trend, group, name, test, "drifted")),
        ],
    )
    caption = (
        f"{test} p-value against alpha (drifted when below it)"
        if p_value
        else f"{test} statistic against its effective threshold (drifted when above it; PSI "
        "and Jensen-Shannon thresholds are raised to their noise floor in small windows)"
    )
    return _figure(chart, caption, numbers)


def _tests_of(trend: Trend, group: str) -> dict[str, list[str]]:
    """Each name's tests in ``group``, in stored order."""
    found: dict[str, list[str]] = {}
    for key in trend.keys_of(group):
        if key[-1] == "value" and key[2] not in found.setdefault(key[1], []):
            found[key[1]].append(key[2])
    return found


def _judging(trend: Trend, group: str, name: str, tests: list[str]) -> str:
    """The test a feature is judged by: the first with a limit in the latest window."""
    for test in tests:
        limit = trend.get(group, name, test, "limit")
        if np.isfinite(limit[-1:]).any():
            return test
    return tests[0]


def _drift(view: View, trend: Trend, axis: Axis, group: str, title: str) -> str:
    found = _tests_of(trend, group)
    if not found:
        return section(title, notice("No drift tests in these windows.", "info"))
    figures = []
    for name, tests in found.items():
        if view.test is not None and view.test not in tests:
            figures.append(f'<p class="empty">{esc(name)}: no {esc(view.test)} test.</p>')
            continue
        test = view.test or _judging(trend, group, name, tests)
        figures.append(_test_chart(view, trend, axis, group, name, test))
    return section(title, f'<div class="grid2">{"".join(figures)}</div>', anchor=group)


def _multivariate(view: View, trend: Trend, axis: Axis) -> str:
    value = trend.get("multivariate", "value")
    low, high = trend.get("multivariate", "low"), trend.get("multivariate", "high")
    chart = charts.series_chart(
        "Multivariate drift (PCA reconstruction error)",
        axis,
        [Line("reconstruction error", value)],
        band=Band("reference band", low, high),
        y_label="reconstruction error",
        flags=_flags(trend, "multivariate", "drifted"),
    )
    numbers = _numbers(view, trend, [("error", value), ("band low", low), ("band high", high)])
    return section(
        "Multivariate drift",
        _figure(chart, "Drifted when outside the band.", numbers),
        anchor="multivariate",
    )


def _metric_names(trend: Trend, group: str, sub: int = 1) -> list[str]:
    return list(dict.fromkeys(k[sub] for k in trend.keys_of(group) if len(k) > sub + 1))


def _performance(view: View, trend: Trend, axis: Axis) -> str:
    figures = []
    for metric in _metric_names(trend, "performance"):
        value = trend.get("performance", metric, "value")
        if not np.isfinite(value).any():
            continue
        low, high = (
            trend.get("performance", metric, "low"),
            trend.get("performance", metric, "high"),
        )
        lines = [Line(f"realised {metric}", value, "s0")]
        estimate = trend.get("estimated", metric, "value")
        band = Band("95% interval", low, high)
        columns = [("realised", value), ("ci low", low), ("ci high", high)]
        if np.isfinite(estimate).any():
            lines.append(Line("CBPE estimate", estimate, "s1"))
            lines.append(Line("estimate band", trend.get("estimated", metric, "lower"), "s2"))
            lines.append(Line("", trend.get("estimated", metric, "upper"), "s2"))
            columns.append(("CBPE estimate", estimate))
        chart = charts.series_chart(f"{metric}", axis, lines, band=band, y_label=metric)
        figures.append(
            _figure(
                chart,
                f"Realised {metric} on the labelled rows with its "
                "confidence interval (band), and the CBPE estimate with its "
                "band where one was made.",
                _numbers(view, trend, columns),
            )
        )
    estimated_only = [
        m
        for m in _metric_names(trend, "estimated")
        if not np.isfinite(trend.get("performance", m, "value")).any()
    ]
    for metric in estimated_only:
        estimate = trend.get("estimated", metric, "value")
        band = Band(
            "estimate band",
            trend.get("estimated", metric, "lower"),
            trend.get("estimated", metric, "upper"),
        )
        chart = charts.series_chart(
            f"{metric} (estimated)",
            axis,
            [Line("CBPE estimate", estimate, "s1")],
            band=band,
            y_label=metric,
        )
        figures.append(
            _figure(
                chart,
                "No outcomes yet: the CBPE estimate with its band.",
                _numbers(
                    view, trend, [("estimate", estimate), ("lower", band.low), ("upper", band.high)]
                ),
            )
        )
    ece = trend.get("calibration", "ece", "value")
    if np.isfinite(ece).any():
        band = Band(
            "interval",
            trend.get("calibration", "ece", "low"),
            trend.get("calibration", "ece", "high"),
        )
        chart = charts.series_chart(
            "Calibration (ECE)",
            axis,
            [Line("ECE", ece)],
            band=band,
            y_label="expected calibration error",
        )
        figures.append(
            _figure(
                chart,
                "Expected calibration error of the labelled rows.",
                _numbers(view, trend, [("ECE", ece), ("low", band.low), ("high", band.high)]),
            )
        )
    if not figures:
        return section("Performance", notice("No outcomes or estimates in these windows."))
    return section(
        "Performance", f'<div class="grid2">{"".join(figures)}</div>', anchor="performance"
    )


def _fairness(view: View, trend: Trend, axis: Axis) -> str:
    keys = trend.keys_of("fairness")
    if not keys:
        return section("Fairness", notice("No fairness figures in these windows."))
    warn = (trend.get("fairness-band", "warn", "low"), trend.get("fairness-band", "warn", "high"))
    critical = (
        trend.get("fairness-band", "critical", "low"),
        trend.get("fairness-band", "critical", "high"),
    )
    figures = []
    by_attribute: dict[tuple[str, str], list[tuple[str, ...]]] = {}
    for key in keys:
        by_attribute.setdefault((key[1], key[3]), []).append(key)
    for (attribute, metric), group_keys in by_attribute.items():
        lines = [Line(f"{k[2]}", trend.get(*k), f"s{i % 6}") for i, k in enumerate(group_keys)]
        lines += [Line("critical", critical[0], "limit"), Line("", critical[1], "limit")]
        chart = charts.series_chart(
            f"{attribute}: {metric} ratio to the reference group",
            axis,
            lines,
            band=Band("warn band", warn[0], warn[1]),
            y_label=f"{metric} ratio",
        )
        columns = [(k[2], trend.get(*k)) for k in group_keys]
        figures.append(
            _figure(
                chart,
                "Each group's ratio to the reference group; inside the "
                "shaded warn band is fine, outside the dashed critical limits "
                "is critical.",
                _numbers(view, trend, columns),
            )
        )
    return section("Fairness", f'<div class="grid2">{"".join(figures)}</div>', anchor="fairness")


def _deployment(services: Services, name: str) -> DeploymentOut:
    if not re.fullmatch(DEPLOYMENT_NAME_PATTERN, name):
        raise NotFoundError(f"no deployment named {name!r}")
    return services.deployments.get(name)


@router.get("/deployments/{name}", name="console.deployment")
def deployment_page(
    name: str,
    services: ServicesDep,
    ctx: Read,
    window: Param = None,
    version: Param = None,
    span: Span = None,
    test: Param = None,
) -> Response:
    """One deployment: what it serves, its actions, and its monitoring windows over time."""
    actor = viewer_of(ctx)
    deployment = _deployment(services, name)
    view = _choose(services, deployment, window, version, span, test or None)
    crumbs = [("Overview", "/deployments"), (name, None)]
    body = _header(deployment, actor)
    if actor.can(Permission.DEPLOYMENTS_MANAGE):
        body += _actions(deployment)
    if view is None:
        body += notice("No monitoring window yet: 'medops monitor run' computes them.")
        return page(f"Deployment {name}", body, actor=actor, active="overview", crumbs=crumbs)
    trend = _trend(services, view)
    tests = sorted({k[2] for g in ("feature",) for k in trend.keys_of(g)})
    body += section("Show", _selectors(view, tests), anchor="show")
    if not len(trend):
        body += notice(
            f"No {view.kind} window of v{view.version} in the {RANGE_LABELS[view.range]}."
        )
        return page(f"Deployment {name}", body, actor=actor, active="overview", crumbs=crumbs)
    axis = _axis(view, trend)
    csv_link = link(
        f"/deployments/{name}/trend.csv", "every number of every window as CSV", **view.query()
    )
    body += (
        f"<p>{len(trend)} {esc(view.kind)} windows of v{view.version} ({csv_link}).</p>"
        + _verdicts(view, trend, axis)
        + _drift(view, trend, axis, "feature", "Feature drift")
        + _multivariate(view, trend, axis)
        + _drift(view, trend, axis, "prediction", "Prediction drift")
        + _drift(view, trend, axis, "labels", "Label drift")
        + _performance(view, trend, axis)
        + _fairness(view, trend, axis)
    )
    return page(f"Deployment {name}", body, actor=actor, active="overview", crumbs=crumbs)


@router.get("/deployments/{name}/trend.csv", name="console.deployment-trend")
def deployment_trend_csv(
    name: str,
    services: ServicesDep,
    _ctx: Read,
    window: Param = None,
    version: Param = None,
    span: Span = None,
    test: Param = None,
) -> Response:
    """Every charted number of every window of the page's series, one row per window."""
    deployment = _deployment(services, name)
    view = _choose(services, deployment, window, version, span, test or None)
    if view is None:
        raise NotFoundError(f"deployment {name} has no monitoring window yet")
    trend = _trend(services, view)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    keys = list(trend.values)
    writer.writerow(
        [
            "sequence",
            "start",
            "end",
            "verdict",
            "status",
            "drifted",
            "rows",
            "labelled",
            *("/".join(k) for k in keys),
        ]
    )
    columns = [trend.values[k].tolist() for k in keys]
    for i in range(len(trend)):
        writer.writerow(
            [
                int(trend.sequences[i]),
                trend.starts[i].isoformat(),
                trend.ends[i].isoformat(),
                trend.verdicts[i],
                trend.statuses[i],
                bool(trend.drifted[i]),
                int(trend.rows[i]),
                int(trend.labelled[i]),
                *("" if c[i] != c[i] else repr(c[i]) for c in columns),
            ]
        )
    filename = f"{name}-{view.kind.replace(':', '-')}-v{view.version}.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )
