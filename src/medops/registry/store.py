"""Reading registry rows: references (``name@alias``, ``name/3``, ``name``), and the rows as
the API shows them. Shared by the registry and lifecycle services."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from medops.core.metric_names import REPORT_METRICS
from medops.core.signature import ModelSignature
from medops.errors import FieldError, NotFoundError
from medops.registry.refs import Ref
from medops.registry.schemas import (
    CardContent,
    CodeReference,
    DataReference,
    ParityOut,
    PromotionPolicy,
    ReportSummary,
    VersionOut,
)
from medops.registry.tables import (
    ModelAlias,
    ModelCard,
    ModelVersion,
    RegisteredModel,
    ValidationReport,
)
from medops.registry.validation_report import ReportDocument


def load_model(session: Session, name: str, *, for_update: bool = False) -> RegisteredModel:
    """The registered model called ``name`` (NotFoundError otherwise)."""
    query = select(RegisteredModel).where(RegisteredModel.name == name)
    if for_update:
        query = query.with_for_update()
    model = session.scalars(query).first()
    if model is None:
        raise NotFoundError(
            f"model {name!r} does not exist", errors=[FieldError("model", "unknown model")]
        )
    return model


def load_version(session: Session, model: RegisteredModel, ref: Ref) -> ModelVersion:
    """The version ``ref`` names within ``model``."""
    query = select(ModelVersion).where(ModelVersion.model_id == model.id)
    if ref.alias is not None:
        alias = session.get(ModelAlias, (model.id, ref.alias))
        if alias is None:
            raise NotFoundError(f"model {model.name!r} has no alias {ref.alias!r}")
        query = query.where(ModelVersion.id == alias.version_id)
    elif ref.version is not None:
        query = query.where(ModelVersion.version == ref.version)
    else:
        query = query.order_by(ModelVersion.version.desc()).limit(1)
    row = session.scalars(query).first()
    if row is None:
        what = f"version {ref.version}" if ref.version else "any version"
        raise NotFoundError(f"model {model.name!r} has no {what}")
    return row


def resolve(session: Session, ref: Ref) -> tuple[RegisteredModel, ModelVersion]:
    """The model and version a reference names."""
    model = load_model(session, ref.name)
    return model, load_version(session, model, ref)


def policy_of(model: RegisteredModel) -> PromotionPolicy:
    return PromotionPolicy.model_validate_json(model.policy)


def aliases_of(session: Session, model_id: str) -> dict[str, int]:
    rows = session.scalars(select(ModelAlias).where(ModelAlias.model_id == model_id))
    return {row.alias: row.version for row in rows}


def latest_report(session: Session, version_id: str) -> ValidationReport | None:
    return session.scalars(
        select(ValidationReport)
        .where(ValidationReport.version_id == version_id)
        .order_by(ValidationReport.number.desc())
        .limit(1)
    ).first()


def card_content(session: Session, version_id: str) -> tuple[CardContent, ModelCard | None]:
    row = session.get(ModelCard, version_id)
    if row is None:
        return CardContent(), None
    return CardContent.model_validate_json(row.content), row


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else None


def version_out(session: Session, model: RegisteredModel, row: ModelVersion) -> VersionOut:
    """A version as the API shows it, with the aliases that point at it now."""
    aliases = sorted(a for a, v in aliases_of(session, model.id).items() if v == row.version)
    parent = session.get(ModelVersion, row.parent_id) if row.parent_id else None
    training = _loads(row.training_data)
    code = _loads(row.code_ref)
    parity = _loads(row.parity)
    status = "aliased" if aliases else "candidate"
    return VersionOut(
        model=model.name,
        version=row.version,
        ref=f"{model.name}/{row.version}",
        artifact_digest=row.artifact_digest,
        artifact_size=row.artifact_size,
        artifact=json.loads(row.artifact_info),
        signature=ModelSignature.model_validate_json(row.signature),
        framework=row.framework,
        parity=ParityOut.model_validate(parity) if parity else None,
        training_data=DataReference.model_validate(training) if training else None,
        code=CodeReference.model_validate(code) if code else None,
        hyperparameters=json.loads(row.hyperparameters),
        training_metrics=json.loads(row.training_metrics),
        lineage=json.loads(row.lineage),
        tags=json.loads(row.tags),
        description=row.description,
        parent=f"{model.name}/{parent.version}" if parent else None,
        created_at=row.created_at,
        created_by=row.created_by,
        aliases=aliases,
        status=status,
    )


def report_summary(
    model: RegisteredModel, version: ModelVersion, row: ValidationReport
) -> ReportSummary:
    report = ReportDocument.load(json.loads(row.report))
    return ReportSummary(
        id=row.id,
        model=model.name,
        version=version.version,
        dataset_name=row.dataset_name,
        dataset_digest=row.dataset_digest,
        dataset_rows=row.dataset_rows,
        label_column=row.label_column,
        report_hash=row.report_hash,
        passed=row.passed,
        failures=json.loads(row.failures),
        metrics={k: report.value(k) for k in REPORT_METRICS},
        created_at=row.created_at,
        created_by=row.created_by,
        feature_importance=report.importance(),
    )
