"""Audit records as a FHIR R4 Bundle of AuditEvent resources.

The mapping follows the R4 AuditEvent resource (validated with fhir.resources' R4B models,
whose AuditEvent is unchanged from R4): the medops action is the subtype, the actor an agent
with its network address, the resource and the (pseudonymous) patient entities, and the
record's position in its hash chain an entity detail, so an exported event can be traced back
to the verifiable log.
"""

from __future__ import annotations

import ipaddress
import json
import uuid
from collections.abc import Iterable
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from medops.audit.schemas import AuditEventOut

EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
OUTCOME = {"success": "0", "denied": "4", "failure": "4"}


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _action_code(action: str) -> str:
    verb = action.rsplit(".", 1)[-1]
    if verb in {"create", "grant", "enroll", "checkpoint", "bootstrap-admin"}:
        return "C"
    if verb in {"list", "read", "me", "roles", "use", "search", "export"}:
        return "R"
    if verb in {"delete"}:
        return "D"
    if action.startswith(("auth.", "session.")):
        return "E"
    return "U"


def audit_event(event: AuditEventOut) -> dict[str, Any]:
    """One record as a FHIR R4 AuditEvent (a plain dict, JSON-ready)."""
    login = event.action.startswith(("auth.", "session."))
    agent: dict[str, Any] = {
        "requestor": True,
        "who": {"display": event.actor_name or "anonymous"},
    }
    if event.actor_id:
        agent["who"]["identifier"] = {"system": "urn:medops:user", "value": event.actor_id}
    if event.actor_role:
        agent["role"] = [{"text": event.actor_role}]
    if event.source_ip and _is_ip(event.source_ip):
        agent["network"] = {"address": event.source_ip, "type": "2"}  # 2: IP address
    if event.auth_method:
        agent["policy"] = [f"urn:medops:auth-method:{event.auth_method}"]
    details = [{"type": "seq", "valueString": str(event.seq)}]
    if event.request_id:
        details.append({"type": "request_id", "valueString": event.request_id})
    if event.user_agent:
        details.append({"type": "user_agent", "valueString": event.user_agent})
    if event.details:
        changes = json.dumps(event.details, sort_keys=True)
        details.append({"type": "changes", "valueString": changes})
    what: dict[str, Any] = {"display": event.resource_type or "medops"}
    if event.resource_id:
        what["identifier"] = {
            "system": f"urn:medops:{event.resource_type or 'resource'}",
            "value": event.resource_id,
        }
    entities: list[dict[str, Any]] = [
        {
            "what": what,
            "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
            "detail": details,
        }
    ]
    if event.patient_ref:
        entities.append(
            {
                "what": {
                    "identifier": {"system": "urn:medops:patient", "value": event.patient_ref}
                },
                "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
                "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
            }
        )
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": f"medops-{event.seq}",
        "type": (
            {"system": DCM, "code": "110114", "display": "User Authentication"}
            if login
            else {"system": EVENT_TYPE, "code": "rest", "display": "RESTful Operation"}
        ),
        "subtype": [{"system": "urn:medops:action", "code": event.action}],
        "action": _action_code(event.action),
        "recorded": event.occurred_at.isoformat(),
        "outcome": OUTCOME.get(event.outcome, "8"),
        "agent": [agent],
        "source": {
            "observer": {"display": "medops"},
            "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
        },
        "entity": entities,
    }
    if event.reason:
        resource["outcomeDesc"] = event.reason
    return resource


def bundle(events: Iterable[AuditEventOut]) -> dict[str, Any]:
    """A FHIR R4 collection Bundle of AuditEvents, validated before it is returned."""
    document = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": audit_event(e)} for e in events
        ],
    }
    Bundle.model_validate(document)  # raises if the mapping ever drifts from the standard
    return document
