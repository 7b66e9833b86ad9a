"""Alert notifications over HTTP: run the dispatcher now (the job the server runs every
``MEDOPS_ALERT_DISPATCH_SECONDS``), and read the outbox (what was sent, what waits, what
died and why)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from medops.alerting.dispatch import dispatcher_for
from medops.alerting.records import DispatchSummary, NotificationOut
from medops.alerting.tables import AlertNotification
from medops.api.deps import API_PREFIX, ServicesDep, require
from medops.context import Context
from medops.core.permissions import Permission

router = APIRouter(tags=["alerts"])
Reader = Annotated[Context, Depends(require(Permission.ALERTS_READ))]
Runner = Annotated[Context, Depends(require(Permission.ALERTS_RUN))]


@router.post(f"{API_PREFIX}/alerts/dispatch", name="alerts.dispatch")
async def dispatch_alerts(services: ServicesDep, _ctx: Runner) -> DispatchSummary:
    """Send the queued notifications that are due now; answers what was claimed, sent,
    failed (retried later), given up (dead) and left to another replica."""
    return await run_in_threadpool(dispatcher_for(services).run_once)


@router.get(f"{API_PREFIX}/alert-notifications", name="alerts.notifications")
def list_notifications(
    services: ServicesDep,
    _ctx: Reader,
    status: Annotated[Literal["queued", "sent", "dead"] | None, Query()] = None,
    receiver: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[NotificationOut]:
    """The outbox's rows, newest first (filtered by status and receiver)."""
    query = select(AlertNotification).order_by(AlertNotification.created_at.desc()).limit(limit)
    if status is not None:
        query = query.where(AlertNotification.status == status)
    if receiver is not None:
        query = query.where(AlertNotification.receiver == receiver)
    with services.db.session() as session:
        return [
            NotificationOut.model_validate(row, from_attributes=True)
            for row in session.scalars(query)
        ]
