"""Every state-changing request and every refusal leaves an audit record; auditors read them."""

from __future__ import annotations

import csv
import io
import json

import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle

from medops.core.permissions import Role
from medops.services import Services
from medops.testing import capture_audit
from tests.helpers.http import bearer


def test_each_state_change_writes_one_audit_record_with_actor_and_origin(
    http: httpx.Client, services: Services, tokens: dict[Role, str]
) -> None:
    """User create/disable and token create/revoke each write a success record."""
    admin = bearer(tokens[Role.ADMIN])
    with capture_audit(services) as audit:
        http.post(
            "/api/v1/users",
            json={"username": "frank", "role": "clinician", "password": "fresh-orchard-41"},
            headers={**admin, "X-Request-ID": "create-frank"},
        )
        http.post("/api/v1/users/frank/disable", headers=admin)
        issued = http.post("/api/v1/tokens", json={"name": "t"}, headers=admin).json()
        http.delete(f"/api/v1/tokens/{issued['id']}", headers=admin)
    assert audit.actions() == ["user.create", "user.disable", "token.create", "token.revoke"]
    assert all(e.outcome == "success" for e in audit.events)
    assert all(e.actor_name == "user-admin" and e.actor_role == "admin" for e in audit.events)
    assert all(e.source_ip == "127.0.0.1" for e in audit.events)
    create = audit.events[0]
    assert create.request_id == "create-frank"
    assert create.resource_type == "user"
    assert create.resource_id == "frank"
    assert create.details == {"after": {"role": "clinician", "username": "frank"}}
    assert "fresh-orchard-41" not in str(create.details)
    assert audit.events[1].details == {
        "after": {"active": False},
        "before": {"active": True},
        "tokens_revoked": 0,
    }


def test_refused_and_failed_changes_are_audited_with_the_reason(
    http: httpx.Client, services: Services, tokens: dict[Role, str]
) -> None:
    """403 and 409 on a change each leave a denied/failure record naming the action; a 401
    is counted with the other refusals of its address and minute."""
    body = {"username": "gina", "role": "clinician", "password": "amber-lantern-77"}
    with capture_audit(services) as audit:
        http.post("/api/v1/users", json=body, headers=bearer(tokens[Role.CLINICIAN]))
        http.post("/api/v1/users", json=body)
        http.post("/api/v1/users", json=body, headers=bearer(tokens[Role.ADMIN]))
        http.post("/api/v1/users", json=body, headers=bearer(tokens[Role.ADMIN]))
        services.refusals.flush(everything=True)
    outcomes = [(e.action, e.outcome, e.actor_name) for e in audit.events]
    assert outcomes == [
        ("user.create", "denied", "user-clinician"),
        ("user.create", "success", "user-admin"),
        ("user.create", "failure", "user-admin"),
        ("auth.refused", "denied", None),
    ]
    assert (audit.events[3].details or {})["routes"] == {"POST /api/v1/users": 1}
    assert "lacks permission 'users:manage'" in (audit.events[0].reason or "")
    assert "already exists" in (audit.events[2].reason or "")


def test_reads_that_succeed_are_not_state_changes_and_write_nothing(
    http: httpx.Client, services: Services, tokens: dict[Role, str]
) -> None:
    """Listing users changes nothing and holds no patient data: no audit record."""
    with capture_audit(services) as audit:
        assert http.get("/api/v1/users", headers=bearer(tokens[Role.AUDITOR])).status_code == 200
    assert audit.events == []


def test_auditor_pages_through_the_trail_newest_first(
    http: httpx.Client, tokens: dict[Role, str]
) -> None:
    """The audit API pages with ``before``; clinicians may not read it."""
    auditor = bearer(tokens[Role.AUDITOR])
    first = http.get("/api/v1/audit/events", params={"limit": 3}, headers=auditor).json()
    seqs = [e["seq"] for e in first["events"]]
    assert seqs == sorted(seqs, reverse=True)
    assert len(seqs) == 3
    second = http.get(
        "/api/v1/audit/events", params={"limit": 3, "before": first["next_before"]}, headers=auditor
    ).json()
    assert all(e["seq"] < min(seqs) for e in second["events"])
    logins = http.get(
        "/api/v1/audit/events", params={"action": "auth.login"}, headers=auditor
    ).json()
    assert {e["action"] for e in logins["events"]} == {"auth.login"}
    assert len(logins["events"]) == len(Role)
    denied = http.get("/api/v1/audit/events", headers=bearer(tokens[Role.CLINICIAN]))
    assert denied.status_code == 403


def test_search_filters_combine(
    http: httpx.Client, services: Services, tokens: dict[Role, str]
) -> None:
    """actor, action, outcome and time range narrow the result; admins may not search."""
    auditor = bearer(tokens[Role.AUDITOR])
    http.post("/api/v1/auth/token", data={"username": "user-clinician", "password": "nope-nope-1"})
    failed = http.get(
        "/api/v1/audit/events",
        params={"action": "auth.login", "outcome": "failure", "resource_id": "user-clinician"},
        headers=auditor,
    ).json()["events"]
    assert [(e["action"], e["outcome"]) for e in failed] == [("auth.login", "failure")]
    mine = http.get(
        "/api/v1/audit/events", params={"actor": "user-auditor"}, headers=auditor
    ).json()["events"]
    assert {e["actor_name"] for e in mine} == {"user-auditor"}
    future = http.get(
        "/api/v1/audit/events", params={"since": "2099-01-01T00:00:00Z"}, headers=auditor
    ).json()["events"]
    assert future == []
    assert http.get("/api/v1/audit/events", headers=bearer(tokens[Role.ADMIN])).status_code == 403


def test_exports_in_jsonl_csv_and_fhir(http: httpx.Client, tokens: dict[Role, str]) -> None:
    """The three formats carry the same records, oldest first; FHIR is an R4 Bundle."""
    auditor = bearer(tokens[Role.AUDITOR])
    jsonl = http.get("/api/v1/audit/export", params={"format": "jsonl"}, headers=auditor)
    assert jsonl.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in jsonl.text.splitlines()]
    assert [r["seq"] for r in lines] == sorted(r["seq"] for r in lines)
    csv_rows = list(
        csv.DictReader(
            io.StringIO(
                http.get("/api/v1/audit/export", params={"format": "csv"}, headers=auditor).text
            )
        )
    )
    assert [int(r["seq"]) for r in csv_rows] == [r["seq"] for r in lines]
    fhir = http.get("/api/v1/audit/export", params={"format": "fhir"}, headers=auditor)
    assert fhir.headers["content-type"].startswith("application/fhir+json")
    bundle = Bundle.model_validate(fhir.json())
    assert len(bundle.entry or []) == len(lines)
    bad = http.get("/api/v1/audit/export", params={"format": "xml"}, headers=auditor)
    assert bad.status_code == 422


@pytest.mark.parametrize(
    "params",
    [
        {"since": "2026-01-01T00:00:00"},
        {"until": "0001-01-01T00:00:00+14:00"},
        {"actor": "a\x00b"},
        {"outcome": "maybe"},
    ],
    ids=["naive-time", "out-of-range", "nul", "unknown-outcome"],
)
def test_bad_search_filters_are_422_not_500(
    http: httpx.Client, tokens: dict[Role, str], params: dict[str, str]
) -> None:
    """Times need a zone and a sane range; text filters no NUL; for search and export."""
    auditor = bearer(tokens[Role.AUDITOR])
    for path in ("/api/v1/audit/events", "/api/v1/audit/export"):
        response = http.get(path, params=params, headers=auditor)
        assert response.status_code == 422, (path, response.text)
