"""A prediction's explanation in the console: ``/explanation?prediction=ID`` (``audit:read``,
as the API's ``/predictions/{id}/explanation``). What the prediction log holds: every
feature's contribution as a bar chart (server-rendered SVG, ``core/svg.py``), the ones the
answer showed marked, the base value, output and method, and whether the stored explanation
matches the digest in the prediction's audit record. A plain GET form: no script."""

from __future__ import annotations

import json
import re
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from medops.api.console.errors import CONSOLE_TAG
from medops.api.console.layout import (
    badge,
    cell,
    definitions,
    notice,
    page,
    section,
    table,
    viewer_of,
)
from medops.api.deps import ServicesDep, require
from medops.context import Context
from medops.core.permissions import Permission
from medops.core.svg import ContributionBar, contribution_plot, esc
from medops.errors import NotFoundError
from medops.serving.schemas import ExplanationOut

router = APIRouter(include_in_schema=False, tags=[CONSOLE_TAG])
Auditor = Annotated[Context, Depends(require(Permission.AUDIT_READ))]
PREDICTION_ID = r"^[0-9a-f]{32}$"


def _form(value: str) -> str:
    return (
        '<form class="filters" method="get" action="/explanation">'
        '<label>Prediction id <input name="prediction" required pattern="[0-9a-f]{32}" '
        f'value="{esc(value)}" size="34"></label> <button type="submit">Show</button></form>'
    )


def _value(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def explanation_body(found: ExplanationOut) -> str:
    """The chart, the facts and the table of one logged explanation."""
    bars = [
        ContributionBar(
            label=f"{c.feature}{'' if c.shown else ' (not shown)'}",
            value=c.contribution,
            detail=_value(c.value),
        )
        for c in found.contributions
    ]
    chart = contribution_plot(
        bars,
        title=f"Why {found.model}/{found.version} scored {found.score:.3f}"
        if found.score is not None
        else f"Why {found.model}/{found.version} scored as it did",
        axis_label=f"contribution ({found.scale.replace('_', '-')}); right raises the score",
    )
    facts = definitions(
        [
            ("prediction", esc(found.prediction_id)),
            ("when", esc(found.occurred_at.isoformat(timespec="seconds"))),
            ("deployment", esc(found.deployment)),
            ("method", esc(f"{found.method} ({'exact' if found.exact else 'approximate'})")),
            (
                "error estimate",
                esc("-" if found.error_estimate is None else f"{found.error_estimate:.3g}"),
            ),
            ("base value", esc(f"{found.base_value:+.4f}")),
            ("output", esc(f"{found.output:+.4f} = base + every contribution")),
            (
                "audit record",
                badge("matches", "ok")
                if found.audited
                else badge("does not match its digest", "bad"),
            ),
        ]
    )
    rows = [
        [
            cell(c.feature),
            cell(_value(c.value)),
            cell(f"{c.contribution:+.6f}"),
            cell(c.direction),
            cell("yes" if c.shown else "no"),
        ]
        for c in found.contributions
    ]
    return (
        f'<figure class="chart">{chart}</figure>'
        + facts
        + table(
            ["feature", "value sent", "contribution", "direction", "shown in the answer"],
            rows,
            caption="Largest first. The answer showed the top contributions; the log keeps all.",
            numeric=(2,),
        )
    )


@router.get("/explanation", name="console.explanation", response_class=HTMLResponse)
async def explanation_page(
    services: ServicesDep,
    ctx: Auditor,
    prediction: Annotated[str, Query(max_length=32)] = "",
) -> Response:
    """A logged prediction's explanation as a bar chart, found by the prediction's id."""
    actor = viewer_of(ctx)
    body = _form(prediction)
    status = 200
    if prediction:
        if not re.fullmatch(PREDICTION_ID, prediction):
            body += notice("A prediction id is 32 hexadecimal characters.", "warn")
            status = 422
        else:
            try:
                found = await run_in_threadpool(services.explanations.get, ctx, prediction)
                body += section("Explanation", explanation_body(found))
            except NotFoundError as exc:
                body += notice(exc.message, "warn")
                status = 404
    return page(
        "Prediction explanation",
        body,
        actor=actor,
        active="audit",
        crumbs=[("Audit", "/audit"), ("Explanation", None)],
        status=status,
    )
