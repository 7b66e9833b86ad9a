"""Lineage over HTTP: the graph around a dataset version, model version or deployment, the
impact of a dataset version, recording an edge, and one pass of the OpenLineage outbox.
Every route needs ``lineage:read`` except recording (``data:write``) and sending
(``data:manage``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from medops.api.deps import API_PREFIX, ServicesDep, require
from medops.context import Context
from medops.core.permissions import Permission
from medops.lineage.schemas import EdgeIn, ImpactReport, LineageEdgeOut, LineageGraph, SendSummary

router = APIRouter(tags=["lineage"])
Reader = Annotated[Context, Depends(require(Permission.LINEAGE_READ))]
Writer = Annotated[Context, Depends(require(Permission.DATA_WRITE))]
Manager = Annotated[Context, Depends(require(Permission.DATA_MANAGE))]
RefQuery = Annotated[
    str,
    Query(
        min_length=3,
        max_length=300,
        description="data:NAME@VERSION, model:NAME/VERSION (or NAME@ALIAS), deployment:NAME",
    ),
]


@router.get(f"{API_PREFIX}/lineage", name="lineage.show")
def show(services: ServicesDep, _ctx: Reader, ref: RefQuery) -> LineageGraph:
    """Everything upstream and downstream of one node."""
    return services.lineage.show(ref)


@router.get(f"{API_PREFIX}/lineage/impact", name="lineage.impact")
def impact(
    services: ServicesDep,
    _ctx: Reader,
    dataset: Annotated[str, Query(min_length=3, max_length=300, description="NAME@VERSION")],
) -> ImpactReport:
    """Every derived dataset version, model version, alias and deployment downstream of a
    dataset version, with whether each serves now, its predictions and windows."""
    return services.lineage.impact(dataset)


@router.post(f"{API_PREFIX}/lineage/edges", name="lineage.record", status_code=201)
def record(services: ServicesDep, ctx: Writer, edge: EdgeIn) -> LineageEdgeOut:
    """Record that a dataset version was used to make a dataset or model version."""
    return services.lineage.record(ctx, edge)


@router.post(f"{API_PREFIX}/lineage/send", name="lineage.send")
async def send(services: ServicesDep, _ctx: Manager) -> SendSummary:
    """Send the waiting OpenLineage events to MEDOPS_OPENLINEAGE_URL now."""
    return await run_in_threadpool(services.lineage.send)
