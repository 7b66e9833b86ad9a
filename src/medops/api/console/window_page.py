"""The console's page of one monitoring window:
``/deployments/{name}/windows/{window_kind}/{version}/{sequence}`` (``monitoring:read``).

``window_kind`` is stored as written (``day``, ``count:500``): a colon is allowed in a path
segment, so links use it as is and a browser's ``count%3A500`` is decoded to the same. A
kind, version or sequence out of range is a 422 page naming the field; a window not
computed is a 404 page. The links to the previous and next window of the series (same kind
and version) are found by sequence; for time windows with gaps, among the newest
``NEIGHBOUR_SCAN`` windows of the kind.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.responses import HTMLResponse, Response

from medops.api.console.errors import CONSOLE_TAG
from medops.api.console.layout import page, viewer_of
from medops.api.console.window import Neighbours, render
from medops.api.deps import ServicesDep, require
from medops.context import Context
from medops.core.permissions import Permission
from medops.core.windows import WINDOW_PATTERN
from medops.errors import NotFoundError
from medops.monitoring.results import WindowSummary
from medops.monitoring.titles import window_title
from medops.services import Services
from medops.serving.schemas import DEPLOYMENT_NAME_PATTERN

router = APIRouter(include_in_schema=False, tags=[CONSOLE_TAG])
Read = Annotated[Context, Depends(require(Permission.MONITORING_READ))]
NEIGHBOUR_SCAN = 1000


def neighbours(services: Services, found: WindowSummary) -> Neighbours:
    """The windows before and after ``found`` in its series (same kind and version)."""
    sequence = found.sequence or 0

    def exact(number: int) -> WindowSummary | None:
        if number < 0:
            return None
        try:
            return services.monitoring.document(
                found.deployment, found.window, version=found.version, sequence=number
            )
        except NotFoundError:
            return None

    before, after = exact(sequence - 1), exact(sequence + 1)
    if before is None or after is None:  # time windows skip the periods without predictions
        series = [
            s
            for s in services.monitoring.results(
                found.deployment, found.window, limit=NEIGHBOUR_SCAN
            )
            if s.version == found.version and s.sequence is not None
        ]
        earlier = [s for s in series if s.sequence is not None and s.sequence < sequence]
        later = [s for s in series if s.sequence is not None and s.sequence > sequence]
        before = before or max(earlier, key=lambda s: s.sequence or 0, default=None)
        after = after or min(later, key=lambda s: s.sequence or 0, default=None)
    return Neighbours(previous=before, next=after)


@router.get(
    "/deployments/{name}/windows/{window_kind}/{version}/{sequence}",
    name="console.window",
    response_class=HTMLResponse,
)
def window_page(
    name: Annotated[str, Path(pattern=DEPLOYMENT_NAME_PATTERN)],
    window_kind: Annotated[str, Path(pattern=WINDOW_PATTERN)],
    version: Annotated[int, Path(ge=1, le=2**31 - 1)],
    sequence: Annotated[int, Path(ge=0, le=2**62)],
    services: ServicesDep,
    ctx: Read,
) -> Response:
    """One window: bounds, verdict and alerts, every test with its configured and effective
    threshold, the distributions compared, performance, calibration, CBPE, fairness,
    multivariate drift and the configuration applied."""
    document = services.monitoring.document(name, window_kind, version=version, sequence=sequence)
    body = render(document, neighbours=neighbours(services, document))
    crumbs = [
        ("Overview", "/deployments"),
        (name, f"/deployments/{name}"),
        (f"{window_kind} v{version} #{sequence}", None),
    ]
    return page(
        window_title(document), body, actor=viewer_of(ctx), active="overview", crumbs=crumbs
    )
