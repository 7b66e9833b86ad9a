"""The model registry: models, versions, validation reports, model cards, signatures, aliases.

A version is selected in paths by number (``/versions/3``) or by alias
(``/versions/production``); aliases start with a letter, so the two never collide.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from medops.api.deps import API_PREFIX, ServicesDep, require
from medops.api.errors import field_name, field_summary
from medops.context import Context
from medops.core.permissions import Permission
from medops.errors import FieldError, InvalidInputError
from medops.registry import card as cards
from medops.registry.refs import Ref
from medops.registry.schemas import (
    ALIAS_PATTERN,
    MODEL_NAME_PATTERN,
    QUANTIZE_TOLERANCE,
    AliasEventOut,
    ApprovalOut,
    ApprovalRequest,
    CardContent,
    GateResult,
    ModelCreate,
    ModelOut,
    PinnedValidation,
    PolicyChangeOut,
    PolicyChangeRequest,
    PolicySignRequest,
    PolicyWithdrawRequest,
    PromoteRequest,
    PromotionPolicy,
    QuantizedVersionOut,
    ReportOut,
    RollbackRequest,
    VersionCreate,
    VersionOut,
)

router = APIRouter(prefix=f"{API_PREFIX}/models", tags=["models"])

Name = Annotated[str, Path(pattern=MODEL_NAME_PATTERN)]
Selector = Annotated[
    str, Path(pattern=r"^([1-9][0-9]{0,8}|[a-z][a-z0-9_\-]{0,63})$", description="number or alias")
]
Alias = Annotated[str, Path(pattern=ALIAS_PATTERN)]
Read = Annotated[Context, Depends(require(Permission.MODELS_READ))]
Write = Annotated[Context, Depends(require(Permission.MODELS_WRITE))]
Promote = Annotated[Context, Depends(require(Permission.MODELS_PROMOTE))]
LabelColumn = Annotated[str, Query(min_length=1, max_length=64, description="Label column.")]
DatasetName = Annotated[str, Query(alias="dataset", min_length=1, max_length=200)]


def _ref(name: str, selector: str) -> Ref:
    if selector.isdigit():
        return Ref(name, version=int(selector))
    return Ref(name, alias=selector)


@router.get("", name="models.list")
def list_models(services: ServicesDep, _ctx: Read) -> list[ModelOut]:
    """Registered models with their latest version and aliases."""
    return services.registry.list_models()


@router.post("", name="models.create", status_code=201)
def create_model(body: ModelCreate, services: ServicesDep, ctx: Write) -> ModelOut:
    """Register a model name (and, with models:policy, its promotion policy)."""
    return services.registry.create_model(ctx, body)


@router.get("/{name}", name="models.get")
def get_model(name: Name, services: ServicesDep, _ctx: Read) -> ModelOut:
    """One model with its policy and aliases."""
    return services.registry.get_model(name)


@router.put("/{name}/policy", name="models.policy")
def set_policy(
    name: Name,
    body: PromotionPolicy,
    services: ServicesDep,
    ctx: Annotated[Context, Depends(require(Permission.MODELS_POLICY))],
) -> ModelOut:
    """Replace the model's promotion policy with one at least as strict (audited with before
    and after); a policy that loosens any rule is refused (409 governed-change): propose it
    under ``/policy-changes``."""
    return services.registry.set_policy(ctx, name, body)


ChangeId = Annotated[str, Path(pattern=r"^pc_[0-9a-f]{16}$", max_length=19)]


@router.get("/{name}/policy-changes", name="models.policy_changes")
def list_policy_changes(name: Name, services: ServicesDep, _ctx: Read) -> list[PolicyChangeOut]:
    """The model's policy changes (pending, applied, withdrawn, superseded), newest first."""
    return services.policy_changes.changes(name)


@router.post("/{name}/policy-changes", name="models.policy_change.propose", status_code=201)
def propose_policy_change(
    name: Name,
    body: PolicyChangeRequest,
    services: ServicesDep,
    ctx: Annotated[Context, Depends(require(Permission.MODELS_POLICY))],
) -> PolicyChangeOut:
    """Propose a policy that loosens the current one; it applies once two people, one a
    clinician, have signed it."""
    return services.policy_changes.propose(ctx, name, body)


@router.get("/{name}/policy-changes/{change_id}", name="models.policy_change")
def get_policy_change(
    name: Name, change_id: ChangeId, services: ServicesDep, _ctx: Read
) -> PolicyChangeOut:
    """One policy change with its signatures and what it still needs."""
    return services.policy_changes.get(name, change_id)


@router.post(
    "/{name}/policy-changes/{change_id}/approvals",
    name="models.policy_change.sign",
    status_code=201,
)
def sign_policy_change(
    name: Name,
    change_id: ChangeId,
    body: PolicySignRequest,
    services: ServicesDep,
    ctx: Annotated[Context, Depends(require(Permission.MODELS_APPROVE))],
) -> PolicyChangeOut:
    """Sign a pending policy change (re-authentication required); the signature that
    completes it applies the new policy."""
    return services.policy_changes.sign(ctx, name, change_id, body)


@router.post("/{name}/policy-changes/{change_id}/withdraw", name="models.policy_change.withdraw")
def withdraw_policy_change(
    name: Name,
    change_id: ChangeId,
    body: PolicyWithdrawRequest,
    services: ServicesDep,
    ctx: Annotated[Context, Depends(require(Permission.MODELS_POLICY))],
) -> PolicyChangeOut:
    """Withdraw a pending policy change."""
    return services.policy_changes.withdraw(ctx, name, change_id, body)


@router.get("/{name}/versions", name="models.versions")
def list_versions(name: Name, services: ServicesDep, _ctx: Read) -> list[VersionOut]:
    """Every version of a model, oldest first."""
    return services.registry.list_versions(name)


@router.post("/{name}/versions", name="models.register", status_code=201)
def register_version(
    name: Name,
    services: ServicesDep,
    ctx: Write,
    artifact: Annotated[UploadFile, File(description="The ONNX model file.")],
    metadata: Annotated[str, Form(description="VersionCreate as JSON.")],
) -> VersionOut:
    """Register the next version: an ONNX file plus its signature, lineage and parity sample.
    Pickles and other executable formats are refused; nothing is stored on any refusal."""
    try:
        data = VersionCreate.model_validate_json(metadata)
    except ValidationError as exc:
        fields = [FieldError(field_name(("metadata", *e["loc"])), e["msg"]) for e in exc.errors()]
        summary = field_summary(fields)
        raise InvalidInputError(f"invalid version metadata: {summary}", errors=fields) from None
    return services.registry.register_version(ctx, name, artifact.file.read(), data)


@router.get("/{name}/versions/{selector}", name="models.version")
def get_version(name: Name, selector: Selector, services: ServicesDep, _ctx: Read) -> VersionOut:
    """One version, by number or alias."""
    return services.registry.get_version(_ref(name, selector))


@router.get("/{name}/versions/{selector}/artifact", name="models.artifact")
def get_artifact(name: Name, selector: Selector, services: ServicesDep, _ctx: Read) -> Response:
    """The version's ONNX file, checked against its SHA-256 as it is read."""
    version, data = services.registry.artifact(_ref(name, selector))
    return Response(
        data,
        media_type="application/octet-stream",
        headers={
            "content-disposition": f'attachment; filename="{version.model}-{version.version}.onnx"',
            "x-medops-digest": version.artifact_digest,
        },
    )


@router.post("/{name}/versions/{selector}/validate", name="models.validate", status_code=201)
async def validate(
    request: Request,
    name: Name,
    selector: Selector,
    services: ServicesDep,
    ctx: Write,
    label: LabelColumn,
    dataset_name: DatasetName = "evaluation.csv",
    threshold: Annotated[float, Query(gt=0, lt=1)] = 0.5,
    bootstrap: Annotated[int, Query(ge=0, le=10_000)] = 1000,
    seed: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> ReportOut:
    """Compute a validation report from a labeled CSV body (``text/csv``): the version's
    ONNX artifact scores every row; metrics per subgroup with bootstrap intervals."""
    body = await request.body()
    return await run_in_threadpool(
        services.registry.validate,
        ctx,
        _ref(name, selector),
        body,
        label_column=label,
        dataset_name=dataset_name,
        threshold=threshold,
        n_bootstrap=bootstrap,
        seed=seed,
    )


@router.post(
    "/{name}/versions/{selector}/validate-dataset",
    name="models.validate-dataset",
    status_code=201,
)
def validate_dataset(
    name: Name, selector: Selector, body: PinnedValidation, services: ServicesDep, ctx: Write
) -> ReportOut:
    """Re-run validation from a CSV file of a dataset version, read on the server (the
    read is audited with its purpose); the report equals an upload of the same file."""
    return services.registry.validate_pinned(ctx, _ref(name, selector), body)


@router.post("/{name}/versions/{selector}/quantize", name="models.quantize", status_code=201)
async def quantize(
    request: Request,
    name: Name,
    selector: Selector,
    services: ServicesDep,
    ctx: Write,
    label: LabelColumn,
    dataset_name: DatasetName = "evaluation.csv",
    tolerance: Annotated[
        float, Query(gt=0, le=0.1, description="Largest allowed |parent - INT8| probability.")
    ] = QUANTIZE_TOLERANCE,
    description: Annotated[str | None, Query(max_length=2000)] = None,
) -> QuantizedVersionOut:
    """Derive an INT8 version (ONNX Runtime dynamic quantization) measured against this one
    on a labeled CSV body (``text/csv``); refused (``not-quantizable``) when none of the
    model's operators would be quantized, as for tree and linear models."""
    body = await request.body()
    return await run_in_threadpool(
        services.registry.quantize,
        ctx,
        _ref(name, selector),
        body,
        label_column=label,
        dataset_name=dataset_name,
        tolerance=tolerance,
        description=description,
    )


@router.get(
    "/{name}/versions/{selector}/report",
    name="models.report",
    response_model=None,
    responses={200: {"content": {"text/html": {}}}},
)
def get_report(
    name: Name,
    selector: Selector,
    services: ServicesDep,
    _ctx: Read,
    report_format: Annotated[Literal["json", "html"], Query(alias="format")] = "json",
    report_id: Annotated[str | None, Query(alias="id", max_length=32)] = None,
) -> ReportOut | HTMLResponse:
    """The latest validation report (or the one with ``id``), as JSON or as HTML."""
    ref = _ref(name, selector)
    if report_format == "html":
        return HTMLResponse(services.registry.report_html(ref, report_id))
    return services.registry.report(ref, report_id)


@router.patch("/{name}/versions/{selector}/card", name="models.card.update")
def update_card(
    name: Name,
    selector: Selector,
    body: CardContent,
    services: ServicesDep,
    ctx: Annotated[Context, Depends(require(Permission.MODELS_CARD))],
) -> dict[str, Any]:
    """Set the given team-written card fields (others keep their value); returns the card.
    Signatures bound to the previous card revision become invalid."""
    ref = _ref(name, selector)
    services.registry.set_card(ctx, ref, body)
    return services.registry.card(ref, services.lifecycle.approvals(ref))


@router.get(
    "/{name}/versions/{selector}/card",
    name="models.card",
    response_model=None,
    responses={200: {"content": {"text/html": {}, "text/markdown": {}}}},
)
def get_card(
    name: Name,
    selector: Selector,
    services: ServicesDep,
    _ctx: Read,
    card_format: Annotated[Literal["json", "md", "html"], Query(alias="format")] = "json",
) -> dict[str, Any] | Response:
    """The model card with its completeness check and signatures: JSON, Markdown or HTML."""
    ref = _ref(name, selector)
    card = services.registry.card(ref, services.lifecycle.approvals(ref))
    if card_format == "md":
        return PlainTextResponse(cards.to_markdown(card), media_type="text/markdown")
    if card_format == "html":
        return HTMLResponse(cards.to_html(card))
    return card


@router.post("/{name}/versions/{selector}/approvals", name="models.approve", status_code=201)
def approve(
    name: Name,
    selector: Selector,
    body: ApprovalRequest,
    services: ServicesDep,
    ctx: Annotated[Context, Depends(require(Permission.MODELS_APPROVE))],
) -> ApprovalOut:
    """Sign the version (re-authentication required); bound to its artifact, report and card."""
    return services.lifecycle.approve(ctx, _ref(name, selector), body)


@router.get("/{name}/versions/{selector}/approvals", name="models.approvals")
def list_approvals(
    name: Name, selector: Selector, services: ServicesDep, _ctx: Read
) -> list[ApprovalOut]:
    """The version's signatures, each with whether it still verifies."""
    return services.lifecycle.approvals(_ref(name, selector))


@router.get("/{name}/versions/{selector}/gates", name="models.gates")
def gates(
    name: Name,
    selector: Selector,
    services: ServicesDep,
    _ctx: Read,
    alias: Annotated[str, Query(pattern=ALIAS_PATTERN)] = "production",
) -> GateResult:
    """Which promotion gates the version meets now for ``alias``, and what is missing."""
    return services.lifecycle.gates(_ref(name, selector), alias)


@router.get("/{name}/versions/{selector}/sbom", name="models.sbom")
def get_sbom(name: Name, selector: Selector, services: ServicesDep, _ctx: Read) -> dict[str, Any]:
    """The version's ML bill of materials as CycloneDX 1.6 JSON: the artifact's SHA-256,
    its training and evaluation data, framework, converter and opset, the ONNX Runtime that
    serves it, its validation report's hash, the model card and the signers."""
    from medops.registry import sbom

    return sbom.for_version(
        services.registry, services.lifecycle, _ref(name, selector), services.clock.now()
    )


@router.get("/{name}/aliases/{alias}", name="models.alias")
def get_alias(
    name: Name,
    alias: Alias,
    services: ServicesDep,
    _ctx: Read,
    at: Annotated[datetime | None, Query(description="ISO 8601 time with offset.")] = None,
) -> dict[str, Any]:
    """The version ``alias`` points at now, or pointed at at time ``at``."""
    if at is not None and at.tzinfo is None:
        reason = "give a timezone offset, e.g. 2026-11-27T10:00:00Z"
        raise InvalidInputError(f"at: {reason}", errors=[FieldError("at", reason)])
    if at is None:
        version = services.registry.get_version(Ref(name, alias=alias)).version
    else:
        version = services.lifecycle.version_at(name, alias, at)
    return {"model": name, "alias": alias, "version": version, "at": at}


@router.put("/{name}/aliases/{alias}", name="models.promote")
def promote(
    name: Name, alias: Alias, body: PromoteRequest, services: ServicesDep, ctx: Promote
) -> AliasEventOut:
    """Point ``alias`` at a version; a protected alias first checks every gate (409 with
    the unmet conditions otherwise)."""
    return services.lifecycle.promote(ctx, name, alias, body)


@router.post("/{name}/aliases/{alias}/rollback", name="models.rollback")
def rollback(
    name: Name, alias: Alias, body: RollbackRequest, services: ServicesDep, ctx: Promote
) -> AliasEventOut:
    """Move ``alias`` back to the version it pointed at before the current one."""
    return services.lifecycle.rollback(ctx, name, alias, body)


@router.get("/{name}/history", name="models.history")
def history(
    name: Name,
    services: ServicesDep,
    _ctx: Read,
    alias: Annotated[str | None, Query(pattern=ALIAS_PATTERN)] = None,
) -> list[AliasEventOut]:
    """Every alias move with who, when, why and the evidence checked, oldest first."""
    return services.lifecycle.history(name, alias)
