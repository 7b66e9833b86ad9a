"""Liveness, readiness and metrics: public, for load balancers, Kubernetes and Prometheus."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from medops.api.deps import ServicesDep, public
from medops.db import migrate
from medops.errors import ServiceUnavailableError
from medops.logs import get_logger

router = APIRouter(tags=["health"])
log = get_logger("medops.health")


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: str
    revision: str


@router.get("/healthz", name="health.live", dependencies=[Depends(public)])
def healthz() -> Health:
    """The process is up and answering."""
    return Health(status="ok")


@router.get(
    "/readyz",
    name="health.ready",
    dependencies=[Depends(public)],
    responses={503: {"description": "Database unreachable or migrations not current"}},
)
def readyz(services: ServicesDep) -> Readiness:
    """Ready for traffic: the database answers and its schema is at this release's head."""
    head = migrate.head_revision()
    try:
        current = migrate.current_revision(services.db)
    except SQLAlchemyError as exc:
        log.warning("readiness: database unreachable", error=type(exc).__name__)
        raise ServiceUnavailableError("database unreachable") from None
    if current != head:
        raise ServiceUnavailableError(
            f"database schema is at revision {current or 'none'}, this release needs {head}; "
            "run 'medops db upgrade'"
        )
    return Readiness(status="ready", database=services.db.dialect, revision=head)


@router.get(
    "/openapi.json", name="openapi", include_in_schema=False, dependencies=[Depends(public)]
)
def openapi(request: Request) -> dict[str, Any]:
    """The OpenAPI document (served here, not by FastAPI, so it is metered and declared)."""
    document: dict[str, Any] = request.app.openapi()
    return document


@router.get("/metrics", name="health.metrics", dependencies=[Depends(public)])
def metrics(request: Request) -> Response:
    """Prometheus text exposition of process and HTTP metrics."""
    return Response(
        request.app.state.metrics.render(),
        media_type="text/plain; version=0.0.4; charset=utf-8",
    )
