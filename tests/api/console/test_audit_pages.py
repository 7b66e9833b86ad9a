"""The audit pages: search by patient reference as the API searches, paging, the record's
hashes and chain check, the chain status, export links carrying the filters, separation of
duties, and bad filters as 4xx pages. On SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re

import httpx
from sqlalchemy import select, text

from medops.audit.schemas import AuditPage
from medops.audit.tables import AuditEvent
from medops.core.permissions import Role
from medops.services import Services
from tests.helpers.http import bearer
from tests.helpers.registry import predict, random_records

EVENTS = "/api/v1/audit/events"


def _seqs(page: str) -> list[int]:
    """The sequence numbers of the records listed on a search page, in order."""
    return [int(s) for s in re.findall(r'<td class="num"><a href="/audit/(\d+)">', page)]


def _score(http: httpx.Client, headers: dict[str, str], refs: list[str]) -> None:
    records = [
        {"features": r, "patient_ref": ref}
        for r, ref in zip(random_records(len(refs)), refs, strict=True)
    ]
    assert predict(http, headers, {"records": records}).status_code == 200


def _api_page(http: httpx.Client, auditor: dict[str, str], **params: str | int) -> AuditPage:
    answer = http.get(EVENTS, params=params, headers=auditor)
    assert answer.status_code == 200, answer.text
    return AuditPage.model_validate(answer.json())


def test_an_auditor_finds_the_records_of_one_patient_and_only_those(
    http: httpx.Client, deployed: dict[str, dict[str, str]]
) -> None:
    """Searching by patient reference lists exactly the records the API finds for it,
    newest first, and none of another patient's."""
    _score(http, deployed["clin"], ["pt-alpha", "pt-beta", "pt-alpha"])
    auditor = deployed["aud"]
    expected = _api_page(http, auditor, patient="pt-alpha")
    assert len(expected.events) >= 2
    assert {e.patient_ref for e in expected.events} == {"pt-alpha"}

    answer = http.get("/audit", params={"patient": "pt-alpha", "outcome": ""}, headers=auditor)
    assert answer.status_code == 200, answer.text
    assert _seqs(answer.text) == [e.seq for e in expected.events]
    assert "pt-beta" not in answer.text
    other = http.get("/audit", params={"patient": "pt-beta"}, headers=auditor)
    assert "pt-alpha" not in other.text.split("<h2>Records</h2>")[1].split("<h2>")[0]


def test_pages_go_back_in_time_without_gaps_or_repeats(
    http: httpx.Client, tokens: dict[Role, str]
) -> None:
    """With two records a page, following 'Older records' walks the newest records in the
    API's order, each once, and the first page's link to the newest comes back."""
    auditor = bearer(tokens[Role.AUDITOR])
    for _ in range(3):  # refusals are audited: more records to page through
        http.get("/api/v1/users", headers=bearer(tokens[Role.CLINICIAN]))
    expected = [e.seq for e in _api_page(http, auditor, limit=6).events]
    seen: list[int] = []
    address = "/audit?limit=2"
    while len(seen) < 6:
        answer = http.get(address, headers=auditor)
        assert answer.status_code == 200, answer.text
        listed = _seqs(answer.text)
        assert len(listed) == 2
        seen += listed
        older = re.search(r'<a rel="next" href="([^"]+)">', answer.text)
        assert older is not None
        address = html.unescape(older.group(1))
        assert "limit=2" in address
        assert "before=" in address
    assert seen == expected
    assert 'href="/audit?limit=2">Newest</a>' in answer.text


def test_a_records_page_shows_its_hashes_and_that_its_chain_verifies(
    http: httpx.Client, services: Services, tokens: dict[Role, str]
) -> None:
    """Every field, the stored hash and previous hash, and a verified chain up to it."""
    auditor = bearer(tokens[Role.AUDITOR])
    event = _api_page(http, auditor, limit=1).events[0]
    with services.db.session() as session:
        row = session.get(AuditEvent, event.seq)
        assert row is not None
        digest, previous = row.hash, row.prev_hash
    answer = http.get(f"/audit/{event.seq}", headers=auditor)
    assert answer.status_code == 200, answer.text
    assert digest in answer.text
    assert previous in answer.text
    assert event.action in answer.text
    assert "the whole chain up to it" in answer.text
    assert '<span class="badge ok">verifies</span>' in answer.text


def test_a_changed_record_shows_on_the_page_of_a_later_one(
    http: httpx.Client, services: Services, tokens: dict[Role, str]
) -> None:
    """Editing a record's action in the database makes the chain check of the records after
    it in the same chain report that record's hash mismatch."""
    auditor = bearer(tokens[Role.AUDITOR])
    events = _api_page(http, auditor, limit=50).events
    with services.db.session() as session:
        rows = {r.seq: r for r in session.scalars(select(AuditEvent))}
    last = events[0]
    chain = rows[last.seq].chain_id
    victim = next(
        e for e in reversed(events) if rows[e.seq].chain_id == chain and rows[e.seq].chain_seq > 1
    )
    assert victim != last
    with services.db.engine.begin() as connection:
        if services.db.dialect == "sqlite":
            connection.execute(text("DROP TRIGGER audit_events_no_update"))
        else:
            connection.execute(text("DROP TRIGGER audit_events_append_only ON audit_events"))
        connection.execute(
            text("UPDATE audit_events SET action = 'edited' WHERE seq = :seq"),
            {"seq": victim.seq},
        )
    answer = http.get(f"/audit/{last.seq}", headers=auditor)
    assert answer.status_code == 200
    assert "content does not match its hash" in answer.text
    assert '<span class="badge ok">verifies</span>' not in answer.text


def test_the_chain_panel_names_the_last_checkpoint_and_verification_runs_on_demand(
    http: httpx.Client, services: Services, tokens: dict[Role, str]
) -> None:
    """Before a checkpoint the panel says none is signed; after one, its range and key id;
    the verification page runs the API's verification and reports that the log verifies."""
    auditor = bearer(tokens[Role.AUDITOR])
    assert "No checkpoint has been signed yet." in http.get("/audit", headers=auditor).text
    signed = services.checkpoints.checkpoint()
    assert signed is not None
    answer = http.get("/audit", headers=auditor)
    assert f"<code>{signed['key_id']}</code>" in answer.text
    assert f"1–{signed['to_seq']}" in answer.text
    assert "signature verifies" in answer.text
    verified = http.get("/audit/verify", headers=auditor)
    assert verified.status_code == 200, verified.text
    assert '<span class="badge ok">verifies</span>' in verified.text


def test_export_links_carry_the_filters_and_answer_a_fhir_bundle(
    http: httpx.Client, tokens: dict[Role, str]
) -> None:
    """The FHIR link of a filtered search exports exactly the records the search finds."""
    auditor = bearer(tokens[Role.AUDITOR])
    http.get("/api/v1/users", headers=bearer(tokens[Role.CLINICIAN]))  # a denied record
    answer = http.get("/audit?outcome=denied&since=2000-01-01T00:00", headers=auditor)
    hrefs = [
        html.unescape(h) for h in re.findall(r'href="(/api/v1/audit/export[^"]+)"', answer.text)
    ]
    assert len(hrefs) == 3
    fhir = next(h for h in hrefs if "format=fhir" in h)
    assert "outcome=denied" in fhir
    assert "since=2000-01-01T00%3A00%3A00%2B00%3A00" in fhir
    exported = http.get(fhir, headers=auditor)
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"] == "application/fhir+json"
    bundle = exported.json()
    assert bundle["resourceType"] == "Bundle"
    found = _api_page(http, auditor, outcome="denied").events
    assert len(found) >= 1
    assert len(bundle["entry"]) == len(found)
    assert all(e.outcome == "denied" for e in found)


def test_only_auditors_open_the_audit_pages(http: httpx.Client, tokens: dict[Role, str]) -> None:
    """A clinician and an administrator get the 403 page (separation of duties)."""
    for role in (Role.CLINICIAN, Role.ADMIN):
        for address in ("/audit", "/audit/1", "/audit/verify"):
            answer = http.get(address, headers=bearer(tokens[role]))
            assert answer.status_code == 403, (role, address)
            assert answer.headers["content-type"].startswith("text/html")
            assert "audit:read" in answer.text


def test_bad_filters_are_a_clear_4xx_page(http: httpx.Client, tokens: dict[Role, str]) -> None:
    """A date that is not one, an unknown outcome, an inverted range, a cursor that is not a
    number and a record that does not exist answer 4xx pages naming the problem."""
    auditor = bearer(tokens[Role.AUDITOR])
    cases = {
        "/audit?since=yesterday": (422, "since is not a date"),
        "/audit?outcome=maybe": (422, "outcome must be one of success, failure, denied"),
        "/audit?since=2025-02-01T00:00&until=2025-01-01T00:00": (422, "until must be after"),
        "/audit?before=abc": (422, "before"),
        "/audit?limit=0": (422, "limit"),
        "/audit?actor=a%00b": (422, "NUL"),
        "/audit/abc": (422, "seq"),
        "/audit/999999999": (404, "no audit record has sequence number 999999999"),
    }
    for address, (status, words) in cases.items():
        answer = http.get(address, headers=auditor)
        assert answer.status_code == status, (address, answer.text)
        assert answer.headers["content-type"].startswith("text/html")
        assert words in html.unescape(answer.text), address
