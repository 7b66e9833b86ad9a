"""Searching and exporting the audit trail (auditors)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import AwareDatetime

from medops.api.deps import API_PREFIX, ServicesDep, require
from medops.audit import fhir
from medops.audit.schemas import AuditEventOut, AuditPage, AuditQuery, VerificationOut
from medops.audit.verify import summary
from medops.context import Context
from medops.core.permissions import Permission
from medops.errors import FieldError, InvalidInputError

router = APIRouter(prefix=f"{API_PREFIX}/audit", tags=["audit"])
Auditor = Annotated[Context, Depends(require(Permission.AUDIT_READ))]
Text = Annotated[str | None, Query(max_length=128)]
CSV_FIELDS = list(AuditEventOut.model_fields)


def audit_query(
    actor: Text = None,
    action: Text = None,
    resource_type: Text = None,
    resource_id: Text = None,
    patient: Text = None,
    outcome: Annotated[Literal["success", "failure", "denied"] | None, Query()] = None,
    since: Annotated[AwareDatetime | None, Query()] = None,
    until: Annotated[AwareDatetime | None, Query()] = None,
) -> AuditQuery:
    """The filters of a search or an export, checked (the console's audit page uses it too)."""
    texts = {"actor": actor, "action": action, "resource_type": resource_type}
    texts |= {"resource_id": resource_id, "patient": patient}
    for name, value in texts.items():
        if value is not None and "\x00" in value:
            reason = "must not contain a NUL character"
            raise InvalidInputError(f"{name} {reason}", errors=[FieldError(name, reason)])
    try:
        since_utc = since.astimezone(UTC) if since else None
        until_utc = until.astimezone(UTC) if until else None
    except OverflowError:
        reason = "is out of range"
        raise InvalidInputError(f"time {reason}", errors=[FieldError("since", reason)]) from None
    return AuditQuery(
        actor=actor,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        patient_ref=patient,
        outcome=outcome,
        since=since_utc,
        until=until_utc,
    )


Filters = Annotated[AuditQuery, Depends(audit_query)]


@router.get("/events", name="audit.search")
def search(
    services: ServicesDep,
    _ctx: Auditor,
    query: Filters,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> AuditPage:
    """Audit records matching the filters, newest first; page back with ``before``."""
    return services.audit.search(query, limit=limit, before=before)


@router.get("/verify", name="audit.verify")
def verify(services: ServicesDep, _ctx: Auditor) -> VerificationOut:
    """Verify the whole audit log with the server's key: chains, openings, MACs, time,
    checkpoints (and their exported copies), and every prediction, outcome and signature row
    against its record. 200 either way; ``ok`` says whether it verified."""
    return summary(services.checkpoints.verify())


@router.get(
    "/export",
    name="audit.export",
    response_model=None,
    responses={
        200: {"content": {"application/x-ndjson": {}, "text/csv": {}, "application/fhir+json": {}}}
    },
)
def export(
    services: ServicesDep,
    _ctx: Auditor,
    query: Filters,
    format: Annotated[Literal["jsonl", "csv", "fhir"], Query()] = "jsonl",  # noqa: A002
) -> StreamingResponse | JSONResponse:
    """Every matching record, oldest first: JSON lines, CSV, or a FHIR R4 Bundle of
    AuditEvent resources."""
    events = services.audit.iterate(query)
    if format == "fhir":
        return JSONResponse(fhir.bundle(events), media_type="application/fhir+json")
    if format == "csv":
        return StreamingResponse(_csv(events), media_type="text/csv")
    return StreamingResponse(_jsonl(events), media_type="application/x-ndjson")


def _jsonl(events: Iterator[AuditEventOut]) -> Iterator[str]:
    for event in events:
        yield event.model_dump_json() + "\n"


def _csv(events: Iterator[AuditEventOut]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for event in events:
        row = event.model_dump(mode="json")
        row["details"] = json.dumps(row["details"], sort_keys=True) if row["details"] else ""
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()
