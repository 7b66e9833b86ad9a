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
import io
import re
from datetime import timedelta
from typing import Annotated, Final

import numpy as np
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from medops.api.console.charts import Axis
from medops.api.console.errors import CONSOLE_TAG
from medops.api.console.layout import (
    action_form,
    cell,
    definitions,
    field,
    link,
    notice,
    page,
    section,
    viewer_of,
)
from medops.api.console.monitoring_sections import (
    View,
    drift_section,
    fairness_section,
    multivariate_section,
    performance_section,
    verdicts_section,
)
from medops.api.deps import ServicesDep, require
from medops.context import Actor, Context
from medops.core.permissions import Permission
from medops.core.svg import esc
from medops.core.windows import count_size
from medops.errors import InvalidInputError, NotFoundError
from medops.monitoring.drift_tests import BY_NAME
from medops.monitoring.trend import Trend
from medops.services import Services
from medops.serving.schemas import DEPLOYMENT_NAME_PATTERN, DeploymentOut

router = APIRouter(include_in_schema=False, tags=[CONSOLE_TAG])
Read = Annotated[Context, Depends(require(Permission.MONITORING_READ))]
Param = Annotated[str | None, Query()]
Span = Annotated[str | None, Query(alias="range")]
RANGES: Final = {"7": 7, "30": 30, "90": 90, "all": None}
RANGE_LABELS: Final = {"7": "last 7 days", "30": "last 30 days", "90": "last 90 days", "all": "all"}
DEFAULT_RANGE: Final = "30"
KIND_ORDER: Final = {"hour": 0, "day": 1, "week": 2}


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
        "reason",
        "Reason (recorded in the audit trail)",
        ident=f"{name}-reason",
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
                "version",
                "Canary version",
                ident="canary-version",
                kind="number",
                value=str(deployment.canary_version or ""),
                json_type="number",
                hint="the candidate version; empty keeps the current canary",
            )
            + field(
                "percent",
                "Percent of records",
                ident="canary-percent",
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
    body = "".join(forms)
    return section("Actions", f'<div class="grid2">{body}</div>', anchor="actions")


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
        + verdicts_section(view, trend, axis)
        + drift_section(view, trend, axis, "feature", "Feature drift")
        + multivariate_section(view, trend, axis)
        + drift_section(view, trend, axis, "prediction", "Prediction drift")
        + drift_section(view, trend, axis, "labels", "Label drift")
        + performance_section(view, trend, axis)
        + fairness_section(view, trend, axis)
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
