"""Every audit record, whatever its fields hold, maps to a valid FHIR R4 AuditEvent."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from fhir.resources.R4B.auditevent import AuditEvent

from medops.audit.fhir import audit_event, bundle
from medops.audit.schemas import AuditEventOut

ACTIONS = [
    "auth.login",
    "user.create",
    "token.revoke",
    "breakglass.use",
    "session.expire",
    "x.delete",
]


def _random_event(rng: random.Random, seq: int) -> AuditEventOut:
    def maybe(value: str) -> str | None:
        return value if rng.random() < 0.7 else None

    return AuditEventOut(
        seq=seq,
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(10**7)),
        actor_id=maybe(f"u{rng.randrange(99)}"),
        actor_name=maybe("ann"),
        actor_role=maybe("clinician"),
        auth_method=maybe("password+totp"),
        action=rng.choice(ACTIONS),
        resource_type=maybe("user"),
        resource_id=maybe(f"r-{rng.randrange(99)}"),
        patient_ref=maybe(f"pseudo-{rng.randrange(999)}"),
        outcome=rng.choice(["success", "failure", "denied"]),
        reason=maybe("lacks permission"),
        source_ip=maybe("10.1.2.3"),
        user_agent=maybe("ua"),
        request_id=maybe("req-1"),
        details=None,
    )


@pytest.mark.parametrize("seed", range(5))
def test_random_records_validate_as_r4_audit_events(seed: int) -> None:
    """200 random records per seed, optional fields present or absent, all validate."""
    rng = random.Random(seed)
    events = [_random_event(rng, n) for n in range(1, 201)]
    for event in events:
        parsed = AuditEvent.model_validate(audit_event(event))
        assert parsed.outcome in {"0", "4"}
    assert len(bundle(events)["entry"]) == 200


def test_a_patient_reference_becomes_a_patient_entity() -> None:
    """The pseudonymous patient is an entity of type Person, role Patient."""
    rng = random.Random(1)
    event = _random_event(rng, 1).model_copy(update={"patient_ref": "pseudo-42"})
    entities = audit_event(event)["entity"]
    patient = next(e for e in entities if e.get("role", {}).get("code") == "1")
    assert patient["what"]["identifier"] == {"system": "urn:medops:patient", "value": "pseudo-42"}
