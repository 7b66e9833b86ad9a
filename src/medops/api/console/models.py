"""The registry in the console: models, a model's versions, aliases, history and lineage,
and a version's facts, promotion gates, signatures, card and validation report, with the
sign, promote and roll-back actions (sent to the API, which re-authenticates and audits)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import HTMLResponse, Response

from medops.api.console.errors import CONSOLE_TAG
from medops.api.console.layout import (
    action_form,
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
    when,
)
from medops.api.console.lineage import Edge, Node, lineage_svg
from medops.api.console.plans import plan_sections
from medops.api.deps import ServicesDep, require
from medops.context import Actor, Context
from medops.core.permissions import Permission
from medops.core.svg import esc
from medops.errors import MedopsError, NotFoundError
from medops.registry import card as cards
from medops.registry.refs import Ref
from medops.registry.report_html import report_body
from medops.registry.schemas import (
    ALIAS_PATTERN,
    MEANING_STATEMENTS,
    MODEL_NAME_PATTERN,
    AliasEventOut,
    ApprovalOut,
    ModelOut,
    VersionOut,
)
from medops.registry.service import report_meta
from medops.serving.schemas import DeploymentOut

router = APIRouter(include_in_schema=False, tags=[CONSOLE_TAG])
Read = Annotated[Context, Depends(require(Permission.MODELS_READ))]
Name = Annotated[str, Path(pattern=MODEL_NAME_PATTERN)]
Version = Annotated[int, Path(ge=1, le=2**31 - 1)]
MODELS = ("Models", "/models")
AUTO = ' <span class="auto">(from the registry)</span>'


@router.get("/models", name="console.models", response_class=HTMLResponse)
def models_page(services: ServicesDep, ctx: Read) -> Response:
    """Every registered model with its latest version and aliases."""
    rows = [
        [link(f"/models/{m.name}", m.name), cell(m.description),
         cell(None if m.latest_version is None else f"v{m.latest_version}"),
         esc(", ".join(f"{a} → v{v}" for a, v in sorted(m.aliases.items())) or "—"),
         cell(when(m.created_at)), cell(m.created_by)]
        for m in services.registry.list_models()
    ]  # fmt: skip
    body = table(
        ["model", "description", "latest", "aliases", "created", "by"],
        rows,
        empty="No model yet: 'medops models create NAME'.",
    )
    return page("Models", body, actor=viewer_of(ctx), active="models", crumbs=[(MODELS[0], None)])


def _policy(model: ModelOut) -> str:
    policy = model.policy
    items = [
        ("Protected aliases", esc(", ".join(policy.protected_aliases))),
        ("Floors", esc(", ".join(
            f"{k} ≥ {v}" for k, v in (("AUROC", policy.min_auroc), ("AUPRC", policy.min_auprc),
                                      ("sensitivity", policy.min_sensitivity),
                                      ("specificity", policy.min_specificity)) if v is not None
        ) or "none")),
        ("Ceilings", esc(", ".join(
            f"{k} ≤ {v}" for k, v in (("ECE", policy.max_ece), ("Brier", policy.max_brier),
                                      (f"subgroup {policy.gap_metric} gap",
                                       policy.max_subgroup_gap)) if v is not None
        ) or "none")),
        ("Signatures needed", esc(", ".join(
            f"{n} {role}" for role, n in sorted(policy.required_approvals.items()) if n
        ) or "none")),
        ("Parity and card", esc(f"parity {'required' if policy.require_parity else 'optional'}, "
                                f"complete card "
                                f"{'required' if policy.require_complete_card else 'optional'}")),
    ]  # fmt: skip
    return definitions(items)


def _lineage(model: ModelOut, versions: list[VersionOut], deployments: list[DeploymentOut]) -> str:
    nodes: list[Node] = []
    edges: list[Edge] = []
    data_keys: dict[str, str] = {}
    for v in versions:
        key = f"v{v.version}"
        nodes.append(
            Node(key, f"{model.name} v{v.version}", 1, f"/models/{model.name}/versions/{v.version}")
        )
        if v.training_data is not None:
            ident = v.training_data.digest or v.training_data.uri
            if ident not in data_keys:
                data_keys[ident] = f"d{len(data_keys)}"
                label = v.training_data.uri + (
                    f" ({v.training_data.digest[:12]})" if v.training_data.digest else ""
                )
                nodes.append(Node(data_keys[ident], label, 0))
            edges.append(Edge(data_keys[ident], key, "trained"))
        if v.parent:
            parent = v.parent.rsplit("/", 1)[-1]
            edges.append(Edge(f"v{parent}", key, "derived (e.g. quantized)"))
    for alias, number in sorted(model.aliases.items()):
        nodes.append(Node(f"a:{alias}", f"@{alias}", 2))
        edges.append(Edge(f"v{number}", f"a:{alias}", "alias points at"))
    for d in deployments:
        nodes.append(Node(f"dep:{d.name}", d.name, 3, f"/deployments/{d.name}"))
        source = f"a:{d.alias}" if d.alias else f"v{d.pinned_version}"
        edges.append(Edge(source, f"dep:{d.name}", "serves"))
        if d.canary_version is not None:
            edges.append(
                Edge(f"v{d.canary_version}", f"dep:{d.name}", f"canary {d.canary_percent}%")
            )
        if d.shadow_version is not None:
            edges.append(Edge(f"v{d.shadow_version}", f"dep:{d.name}", "shadow"))
    return lineage_svg(nodes, edges, title=f"Lineage of {model.name}")


def _history_rows(events: list[AliasEventOut]) -> list[list[str]]:
    return [
        [cell(when(e.occurred_at)), cell(e.alias), cell(e.kind),
         cell(None if e.from_version is None else f"v{e.from_version}"),
         cell(None if e.to_version is None else f"v{e.to_version}"), cell(e.actor), cell(e.reason)]
        for e in reversed(events)
    ]  # fmt: skip


def _at_time(services: Any, name: str, alias: str, at: str | None) -> str:
    form = (
        f'<form class="filters" method="get" action="/models/{esc(name)}#at-time">'
        + _get_field("alias", "Alias", alias)
        + _get_field("at", "Time (UTC, ISO 8601)", at or "", hint="e.g. 2026-11-27T10:00")
        + '<button type="submit">Look up</button></form>'
    )
    if not at:
        return form
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        return form + notice(f"at: {at!r} is not an ISO 8601 time, e.g. 2026-11-27T10:00", "bad")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        version = services.lifecycle.version_at(name, alias, moment)
    except MedopsError as exc:
        return form + notice(exc.message, "warn")
    target = link(f"/models/{name}/versions/{version}", f"version {version}")
    return (
        form
        + f'<p class="notice">At {esc(when(moment))}, {esc(name)}@{esc(alias)} was {target}.</p>'
    )


def _get_field(name: str, label: str, value: str, hint: str | None = None) -> str:
    note = f'<small id="g-{name}-hint">{esc(hint)}</small>' if hint else ""
    described = f' aria-describedby="g-{name}-hint"' if hint else ""
    return (
        f'<div class="field"><label for="g-{name}">{esc(label)}</label>'
        f'<input id="g-{name}" name="{name}" value="{esc(value)}"{described}>{note}</div>'
    )


@router.get("/models/{name}", name="console.model", response_class=HTMLResponse)
def model_page(
    name: Name,
    services: ServicesDep,
    ctx: Read,
    alias: Annotated[str, Query(pattern=ALIAS_PATTERN)] = "production",
    at: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """A model: policy, aliases, versions, the history of alias moves, what an alias pointed
    at at a given time, and its lineage from data to deployments."""
    actor = viewer_of(ctx)
    model = services.registry.get_model(name)
    versions = services.registry.list_versions(name)
    deployments = (
        [d for d in services.deployments.all() if d.model == name]
        if actor.can(Permission.DEPLOYMENTS_READ)
        else []
    )
    version_rows = [
        [link(f"/models/{name}/versions/{v.version}", f"v{v.version}"), cell(when(v.created_at)),
         cell(v.created_by), cell(v.framework), esc(", ".join(v.aliases) or "—"),
         cell(v.parent), f'<span class="mono">{esc(v.artifact_digest[:16])}</span>',
         cell(v.description)]
        for v in reversed(versions)
    ]  # fmt: skip
    alias_rows = [
        [cell(a), link(f"/models/{name}/versions/{v}", f"v{v}")]
        for a, v in sorted(model.aliases.items())
    ]
    body = (
        (f"<p>{esc(model.description)}</p>" if model.description else "")
        + section("Aliases", table(["alias", "version"], alias_rows, empty="No alias yet."))
        + section("What was in production at a given time", _at_time(services, name, alias, at),
                  anchor="at-time")
        + section("Versions", table(
            ["version", "registered", "by", "framework", "aliases", "derived from",
             "artifact sha256", "description"], version_rows, empty="No version yet."))
        + section("Lineage", _lineage(model, versions, deployments))
        + section("History of alias moves",
                  table(["when", "alias", "move", "from", "to", "by", "reason"],
                        _history_rows(services.lifecycle.history(name)), empty="No move yet."))
        + section("Promotion policy", _policy(model))
        + plan_sections(services, actor, name)
    )  # fmt: skip
    return page(f"Model {name}", body, actor=actor, active="models", crumbs=[MODELS, (name, None)])


def _facts(v: VersionOut) -> str:
    signature = ", ".join(f"{f.name} ({f.type})" for f in v.signature.inputs)
    items = [
        ("Reference", esc(v.ref)),
        ("Registered", esc(f"{when(v.created_at)} by {v.created_by}")),
        ("Artifact", f'<span class="mono">sha256 {esc(v.artifact_digest)}</span> '
                     f"({v.artifact_size:,} bytes) "
                     + link(f"/api/v1/models/{v.model}/versions/{v.version}/artifact", "download")),
        ("Framework", cell(v.framework)),
        ("Inputs", esc(signature)),
        ("Training data", esc(
            v.training_data.uri
            + (f" (sha256 {v.training_data.digest})" if v.training_data.digest else "")
        ) if v.training_data else "—"),
        ("Code", esc(f"{v.code.repository or ''} {v.code.commit} {v.code.path or ''}".strip())
                 if v.code else "—"),
        ("Derived from", cell(v.parent)),
        ("Lineage", link("/lineage", "data, deployments and predictions",
                         ref=f"model:{v.model}/{v.version}")),
        ("Parity", esc(
            f"max |difference| {v.parity.max_abs_diff:.2e} (tolerance {v.parity.tolerance:g}) "
            f"on {v.parity.rows} rows, label agreement {v.parity.label_agreement:.4f}"
        ) if v.parity else '<span class="missing">no parity evidence</span>'),
        ("Hyperparameters",
         f'<span class="mono">{esc(json.dumps(v.hyperparameters, sort_keys=True))}</span>'),
        ("Training metrics", esc(", ".join(
            f"{k} {val:.4g}" for k, val in sorted(v.training_metrics.items())) or "—")),
        ("Aliases", esc(", ".join(v.aliases) or "—")),
    ]  # fmt: skip
    return definitions(items)


def _gates(services: Any, ref: Ref) -> str:
    result = services.lifecycle.gates(ref, "production")
    rows = [[cell(check), badge("met" if ok else "not met", "ok" if ok else "bad")]
            for check, ok in sorted(result.checks.items())]  # fmt: skip
    verdict = (
        notice("Every gate of production is met.", "info")
        if result.passed
        else notice("Not promotable to production: " + "; ".join(result.unmet), "warn")
    )
    return verdict + table(["gate", "state"], rows)


def _signatures(approvals: list[ApprovalOut]) -> str:
    rows = [
        [cell(a.printed_name), cell(a.username), cell(a.role), cell(a.meaning),
         cell(when(a.signed_at)), cell(a.method),
         badge("valid", "ok") if a.valid
         else badge("invalid: " + "; ".join(a.invalid_reasons), "bad"),
         cell(a.comment)]
        for a in approvals
    ]  # fmt: skip
    return table(
        ["printed name", "user", "role", "meaning", "signed", "method", "state", "comment"],
        rows,
        empty="No signature yet.",
    )


def _sign_form(v: VersionOut) -> str:
    statements = "".join(
        f"<li><strong>{esc(meaning)}</strong>: {esc(text)}</li>"
        for meaning, text in MEANING_STATEMENTS.items()
    )
    fields = (
        f'<div class="meaning"><p>By signing you declare, according to the meaning you choose:</p>'
        f"<ul>{statements}</ul><p>Your signature binds this version's artifact "
        f"(sha256 {esc(v.artifact_digest[:16])}…), its latest validation report and the "
        "current revision of its model card. It is recorded with your name, the time and the "
        "meaning, and cannot be edited afterwards.</p></div>"
        + field("meaning", "Meaning of the signature", value="approval",
                options=[(m, m) for m in MEANING_STATEMENTS])
        + field("comment", "Comment", kind="textarea")
        + field("password", "Your password (re-authentication)", kind="password",
                required=True, autocomplete="current-password")
        + field("otp", "One-time code", autocomplete="one-time-code",
                hint="From your authenticator app: signing needs your password and code again.")
    )  # fmt: skip
    return action_form(
        f"/api/v1/models/{v.model}/versions/{v.version}/approvals",
        fields,
        submit="Sign",
    )


def _promote_forms(v: VersionOut) -> str:
    promote = action_form(
        f"/api/v1/models/{v.model}/aliases/production",
        f'<input type="hidden" name="version" value="{v.version}" data-json="number">'
        + field("reason", "Reason (recorded in the history)", required=True),
        submit=f"Promote v{v.version} to production",
        confirm=f"Point {v.model}@production at version {v.version}?",
        method="PUT",
    )
    rollback = action_form(
        f"/api/v1/models/{v.model}/aliases/production/rollback",
        field("reason", "Reason", required=True),
        submit="Roll production back to the version before",
        confirm=f"Move {v.model}@production back to the version it pointed at before?",
        danger=True,
    )
    return promote + rollback


def _card(services: Any, ref: Ref, approvals: list[ApprovalOut]) -> str:
    card = services.registry.card(ref, approvals)
    state = (
        badge("complete", "ok") if card["completeness"]["complete"] else badge("incomplete", "bad")
    )
    parts = [f"<p>Card revision {card['revision'] or 0}: {state}</p>"]
    if card["completeness"]["missing"]:
        parts.append(notice("Missing: " + ", ".join(card["completeness"]["missing"]), "warn"))
    for part in card["sections"]:
        rows = [
            [esc(row["label"]) + (AUTO if row["source"] == "auto" else ""),
             cards.html_value(row["value"])]
            for row in part["fields"]
        ]  # fmt: skip
        parts.append(f"<h3>{esc(part['title'])}</h3>" + table(["field", "value"], rows))
    return "".join(parts)


def _report(services: Any, ref: Ref) -> str:
    try:
        out = services.registry.report(ref)
    except NotFoundError as exc:
        return notice(exc.message, "warn")
    return f'<div class="report">{report_body(out.report, report_meta(out))}</div>'


@router.get(
    "/models/{name}/versions/{version}", name="console.version", response_class=HTMLResponse
)
def version_page(name: Name, version: Version, services: ServicesDep, ctx: Read) -> Response:
    """A version: its facts, the production gates, its signatures (and the sign action with
    re-authentication), promotion, its model card and its validation report."""
    actor: Actor = viewer_of(ctx)
    ref = Ref(name, version=version)
    v = services.registry.get_version(ref)
    approvals = services.lifecycle.approvals(ref)
    tabs = (
        '<ul class="tabs">'
        + "".join(
            f'<li><a href="#{anchor}">{label}</a></li>'
            for anchor, label in (("facts", "Facts"), ("gates", "Gates"),
                                  ("signatures", "Signatures"),
                                  ("card", "Model card"), ("report", "Validation report"))
        )
        + "</ul>"
    )  # fmt: skip
    signing = (
        _sign_form(v)
        if actor.can(Permission.MODELS_APPROVE)
        else '<p class="empty">Your role does not sign versions.</p>'
    )
    promoting = _promote_forms(v) if actor.can(Permission.MODELS_PROMOTE) else ""
    body = (
        tabs
        + section("Facts", _facts(v), anchor="facts")
        + section("Promotion gates (production)", _gates(services, ref) + promoting, anchor="gates")
        + section("Signatures", _signatures(approvals) + signing, anchor="signatures")
        + section("Model card", _card(services, ref, approvals), anchor="card")
        + section("Validation report", _report(services, ref), anchor="report")
    )
    return page(
        f"{name} version {version}",
        body,
        actor=actor,
        active="models",
        crumbs=[MODELS, (name, f"/models/{name}"), (f"v{version}", None)],
    )
