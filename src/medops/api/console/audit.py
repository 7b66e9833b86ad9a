"""The audit pages, for auditors (``audit:read``): search the trail, inspect one record with
its hashes and checkpoint, verify the whole log on demand, and export for the filters.

The search reads through ``AuditService.search`` with the filters checked by the API's own
``audit_query``, so a page and ``GET /api/v1/audit/events`` find the same records; neither
writes an audit record for the search itself (the API does not audit reads of the trail).
A search form sends empty fields, which here mean "no filter"; a time without a zone is read
as UTC (the form says so).

Verifying the whole log reads every record and every row bound to one (seconds per million
records), so the search page shows only the last signed checkpoint and how many records
follow it, and links to ``/audit/verify``, which runs the verification the API's
``/api/v1/audit/verify`` runs when the auditor asks for it. Nothing stores the result of an
earlier run to show instead.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import HTMLResponse, Response

from medops.api.console.errors import CONSOLE_TAG
from medops.api.console.layout import (
    badge,
    cell,
    definitions,
    field,
    link,
    notice,
    page,
    section,
    table,
    viewer_of,
)
from medops.api.deps import ServicesDep, require
from medops.api.routers.audit import audit_query
from medops.audit.inspect import CheckpointOut, inspect_record, last_checkpoint
from medops.audit.schemas import AuditEventOut, AuditQuery, Outcome
from medops.audit.verify import summary
from medops.context import Context
from medops.core.permissions import Permission
from medops.core.svg import esc
from medops.errors import FieldError, InvalidInputError

router = APIRouter(include_in_schema=False, tags=[CONSOLE_TAG])
Auditor = Annotated[Context, Depends(require(Permission.AUDIT_READ))]
Text = Annotated[str | None, Query(max_length=128)]
PAGE_SIZE: Final = 50
OUTCOMES: Final = tuple(o.value for o in Outcome)
FILTERS: Final = ("actor", "action", "resource_type", "resource_id", "patient", "outcome",
                  "since", "until")  # fmt: skip


def stamp(moment: datetime | None) -> str:
    """An audit time to the second, in UTC."""
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _time(name: str, value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        reason = "is not a date and time (YYYY-MM-DDTHH:MM, UTC unless a zone is given)"
        raise InvalidInputError(f"{name} {reason}", errors=[FieldError(name, reason)]) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Search:
    """The search form's values: the checked ``AuditQuery`` and the filters as given (empty
    fields dropped), for the form, the paging links and the export links."""

    def __init__(self, query: AuditQuery, given: dict[str, str]) -> None:
        self.query = query
        self.given = given


def search_of(
    actor: Text = None,
    action: Text = None,
    resource_type: Text = None,
    resource_id: Text = None,
    patient: Text = None,
    outcome: Annotated[str | None, Query(max_length=16)] = None,
    since: Annotated[str | None, Query(max_length=64)] = None,
    until: Annotated[str | None, Query(max_length=64)] = None,
) -> Search:
    """The page's filters checked as the API checks them: empty means no filter."""
    if outcome and outcome not in OUTCOMES:
        reason = f"must be one of {', '.join(OUTCOMES)}"
        raise InvalidInputError(f"outcome {reason}", errors=[FieldError("outcome", reason)])
    start, end = _time("since", since), _time("until", until)
    if start is not None and end is not None and start >= end:
        reason = "must be after since"
        raise InvalidInputError(f"until {reason}", errors=[FieldError("until", reason)])
    query = audit_query(
        actor=actor or None,
        action=action or None,
        resource_type=resource_type or None,
        resource_id=resource_id or None,
        patient=patient or None,
        outcome=outcome or None,  # type: ignore[arg-type]  # checked above
        since=start,
        until=end,
    )
    given = {
        "actor": query.actor, "action": query.action, "resource_type": query.resource_type,
        "resource_id": query.resource_id, "patient": query.patient_ref, "outcome": query.outcome,
        "since": query.since.isoformat() if query.since else None,
        "until": query.until.isoformat() if query.until else None,
    }  # fmt: skip
    return Search(query, {k: v for k, v in given.items() if v})


SearchDep = Annotated[Search, Depends(search_of)]


def _form(search: Search, limit: int) -> str:
    given = search.given
    texts = [("actor", "Actor (username)"), ("action", "Action"), ("patient", "Patient reference"),
             ("resource_type", "Resource type"), ("resource_id", "Resource id")]  # fmt: skip
    fields = "".join(field(name, label, value=given.get(name, "")) for name, label in texts)
    fields += field(
        "outcome",
        "Outcome",
        value=given.get("outcome", ""),
        options=[("", "any"), *((o, o) for o in OUTCOMES)],
    )
    hint = "UTC unless a zone is given, e.g. 2025-01-31T08:00"
    fields += field("since", "From (inclusive)", value=given.get("since", ""), hint=hint)
    fields += field("until", "To (exclusive)", value=given.get("until", ""), hint=hint)
    fields += field("limit", "Per page", kind="number", value=str(limit))
    return (
        f'<form class="filters" method="get" action="/audit">{fields}'
        '<button type="submit" class="primary">Search</button> '
        '<a href="/audit">Clear</a></form>'
    )


def _row(event: AuditEventOut) -> list[str]:
    resource = "/".join(p for p in (event.resource_type, event.resource_id) if p) or None
    patient = (
        link("/audit", event.patient_ref, patient=event.patient_ref) if event.patient_ref else "—"
    )
    shown = cell(resource)
    if event.resource_id and "explanation_digest" in (event.details or {}):
        # An explained prediction: its explanation as the clinician saw it.
        shown += " " + link("/explanation", "explanation", prediction=event.resource_id)
    return [
        link(f"/audit/{event.seq}", str(event.seq)),
        esc(stamp(event.occurred_at)),
        cell(event.actor_name),
        cell(event.actor_role),
        esc(event.action),
        badge(
            event.outcome, {"success": "ok", "failure": "warn", "denied": "bad"}.get(event.outcome)
        ),
        shown,
        patient,
        cell(event.source_ip),
    ]


def _checkpoint_facts(checkpoint: CheckpointOut | None) -> str:
    if checkpoint is None:
        return notice("No checkpoint has been signed yet.", "warn")
    signature = (
        badge("signature verifies", "ok")
        if checkpoint.signature_verifies
        else badge("signature does not verify", "bad")
    )
    return definitions(
        [
            ("Covers records", esc(f"{checkpoint.from_seq}–{checkpoint.to_seq}")),
            ("Records", cell(checkpoint.record_count)),
            ("Signed at", esc(stamp(checkpoint.created_at))),
            ("Signing key id", f"<code>{esc(checkpoint.key_id)}</code>"),
            ("Signature", signature),
        ]
    )


def _chain_panel(checkpoint: CheckpointOut | None, pending: int) -> str:
    body = "<p>The last signed checkpoint of the log.</p>" + _checkpoint_facts(checkpoint)
    body += f"<p>{cell(pending)} record(s) follow it, not yet covered by a checkpoint.</p>"
    body += (
        '<p><a href="/audit/verify">Verify the whole log now</a>: every chain, opening, MAC and '
        "checkpoint, and every prediction, outcome and signature row against its record. It "
        "reads the whole log, so it runs only when asked.</p>"
    )
    return section("Chain status", body, anchor="chain")


def _exports(search: Search) -> str:
    formats = [("fhir", "FHIR R4 Bundle of AuditEvent"), ("csv", "CSV"), ("jsonl", "JSON lines")]
    items = "".join(
        f"<li>{link('/api/v1/audit/export', label, format=kind, **search.given)}</li>"
        for kind, label in formats
    )
    return section(
        "Export",
        "<p>Every record matching the filters above, oldest first:</p>" + f"<ul>{items}</ul>",
        anchor="export",
    )


@router.get("/audit", name="console.audit", response_class=HTMLResponse)
def audit_page(
    services: ServicesDep,
    ctx: Auditor,
    search: SearchDep,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = PAGE_SIZE,
) -> Response:
    """Search the audit trail (newest first, paged back with ``before``), the chain status
    and export links for the filters."""
    found = services.audit.search(search.query, limit=limit, before=before)
    headers = ["seq", "time (UTC)", "actor", "role", "action", "outcome", "resource",
               "patient reference", "source address"]  # fmt: skip
    results = table(
        headers,
        [_row(e) for e in found.events],
        caption="Newest first.",
        numeric=(0,),
        empty="No record matches these filters.",
    )
    pages = []
    if before is not None:
        pages.append(f'<a href="{esc(_here(search, limit))}">Newest</a>')
    if found.next_before is not None:
        older = _here(search, limit, before=found.next_before)
        pages.append(f'<a rel="next" href="{esc(older)}">Older records</a>')
    nav = f'<nav class="pager" aria-label="Pages">{" · ".join(pages)}</nav>' if pages else ""
    body = (
        _form(search, limit)
        + section("Records", results + nav, anchor="records")
        + _exports(search)
        + _chain_panel(last_checkpoint(services.audit), services.checkpoints.pending_records())
    )
    return page("Audit trail", body, actor=viewer_of(ctx), active="audit",
                crumbs=[("Audit", None)])  # fmt: skip


def _here(search: Search, limit: int, **more: object) -> str:
    query: dict[str, object] = dict(search.given)
    if limit != PAGE_SIZE:
        query["limit"] = limit
    query |= more
    return "/audit" + ("?" + urlencode(query) if query else "")


@router.get("/audit/verify", name="console.audit.verify", response_class=HTMLResponse)
def verify_page(services: ServicesDep, ctx: Auditor) -> Response:
    """Verify the whole audit log now, as ``GET /api/v1/audit/verify`` does, and show it."""
    result = summary(services.checkpoints.verify())
    verdict = badge("verifies", "ok") if result.ok else badge("does not verify", "bad")
    facts = [
        ("Result", verdict),
        ("Records", cell(result.records)),
        ("Chains", cell(f"{result.chains} ({result.anchored_chains} anchored, "
                        f"{result.legacy_chains} from before anchoring)")),
        ("Checkpoints", cell(f"{result.checkpoints} ({result.exported_checkpoints} exported "
                             "copies compared)")),
        ("Rows checked", cell(", ".join(f"{k}: {v}" for k, v in sorted(result.rows.items()))
                              or None)),
        ("MACs checked", cell(result.macs_checked)),
        ("Problems", cell(result.problems)),
    ]  # fmt: skip
    if result.first_bad_seq is not None:
        facts.append(("First bad record", link(f"/audit/{result.first_bad_seq}",
                                               str(result.first_bad_seq))))  # fmt: skip
    if result.first_problem:
        facts.append(("First problem", cell(result.first_problem)))
    findings = table(
        ["seq", "kind", "where", "why"],
        [
            [link(f"/audit/{p.seq}", str(p.seq)) if p.seq else "—", cell(p.kind), cell(p.where),
             cell(p.reason)]
            for p in result.findings
        ],
        caption="The first 100 problems.",
        empty="None.",
    )  # fmt: skip
    limits = "".join(f"<li>{esc(text)}</li>" for text in result.limits)
    body = definitions(facts) + section("Problems", findings)
    if limits:
        body += section("What this verification could not check", f"<ul>{limits}</ul>")
    return page("Audit log verification", body, actor=viewer_of(ctx), active="audit",
                crumbs=[("Audit", "/audit"), ("Verification", None)])  # fmt: skip


@router.get("/audit/{seq}", name="console.audit.record", response_class=HTMLResponse)
def record_page(
    services: ServicesDep,
    ctx: Auditor,
    seq: Annotated[int, Path(ge=1, le=2**63 - 1)],
) -> Response:
    """One audit record: every field, its hash and the previous one, the checkpoint that
    covers it, and the check of its chain up to it."""
    found = inspect_record(services.audit, seq)
    event = found.event
    who = link("/audit", event.actor_name, actor=event.actor_name) if event.actor_name else "—"
    patient = (
        link("/audit", event.patient_ref, patient=event.patient_ref) if event.patient_ref else "—"
    )
    details = "<pre>" + esc(_json(event.details)) + "</pre>" if event.details else "—"
    fields = [
        ("Sequence", esc(str(event.seq))),
        ("Time", esc(stamp(event.occurred_at))),
        ("Actor", who),
        ("Actor id", cell(event.actor_id)),
        ("Role", cell(event.actor_role)),
        ("Authenticated by", cell(event.auth_method)),
        ("Action", link("/audit", event.action, action=event.action)),
        ("Outcome", badge(event.outcome, {"success": "ok"}.get(event.outcome))),
        ("Resource type", cell(event.resource_type)),
        ("Resource id", cell(event.resource_id)),
        ("Patient reference", patient),
        ("Reason", cell(event.reason)),
        ("Source address", cell(event.source_ip)),
        ("User agent", cell(event.user_agent)),
        ("Request id", cell(event.request_id)),
        ("Details", details),
    ]
    chain = [
        ("Chain", f"<code>{esc(found.chain_id)}</code>"),
        ("Position in chain", esc(f"#{found.chain_seq}")),
        ("Hash (SHA-256)", f'<code class="hash">{esc(found.hash)}</code>'),
        ("Previous hash", f'<code class="hash">{esc(found.prev_hash)}</code>'),
        ("MAC", f'<code class="hash">{esc(found.mac)}</code>' if found.mac else "— (none)"),
    ]
    check = found.check
    span = (
        "the whole chain up to it"
        if check.whole_chain
        else f"the {check.records} records of its chain up to it (from #{check.from_chain_seq})"
    )
    verdict = (
        badge("verifies", "ok") if check.ok else badge(f"{len(check.problems)} problem(s)", "bad")
    )
    checked = (
        f"<p>{verdict} Checked {esc(span)}: positions, links and hashes"
        + (", MACs" if check.macs_checked else " (no MACs: a chain from before anchoring)")
        + (" and the chain's signed opening" if check.whole_chain else "")
        + '. Other chains, checkpoint roots and bound rows: <a href="/audit/verify">verify the '
        "whole log</a>.</p>"
    )
    if check.problems:
        checked += "<ul>" + "".join(f"<li>{esc(p)}</li>" for p in check.problems) + "</ul>"
    body = (
        definitions(fields)
        + section("Hash chain", definitions(chain) + checked, anchor="chain")
        + section("Covering checkpoint", _checkpoint_facts(found.checkpoint)
                  if found.checkpoint else notice("No signed checkpoint covers this record yet.",
                                                  "warn"), anchor="checkpoint")
    )  # fmt: skip
    return page(f"Audit record {seq}", body, actor=viewer_of(ctx), active="audit",
                crumbs=[("Audit", "/audit"), (f"Record {seq}", None)])  # fmt: skip


def _json(value: object) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)
