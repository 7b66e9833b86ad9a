"""Reading what the prediction log holds of an explained prediction (for auditors and the
console): every feature's contribution, which of them the answer showed, and whether the
stored explanation still matches the digest its prediction's audit record carries."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from medops.audit.bindings import EXPLANATION_FIELDS, explanation_digest
from medops.audit.schemas import AuditEntry
from medops.audit.service import AuditService
from medops.audit.tables import AuditEvent
from medops.context import Context
from medops.db.engine import Database
from medops.errors import NotFoundError
from medops.serving.schemas import ContributionOut, ExplanationOut
from medops.serving.tables import Prediction, PredictionExplanation


class ExplanationService:
    """Explanations of logged predictions."""

    def __init__(self, db: Database, audit: AuditService) -> None:
        self._db = db
        self._audit = audit

    def get(self, ctx: Context, prediction_id: str) -> ExplanationOut:
        """The explanation logged with prediction ``prediction_id`` (404 when it was not
        explained). The explanation shows a patient's inputs, so each read is audited
        ``explanation.read`` with the prediction's patient reference."""
        with self._db.transaction() as session:
            found = session.execute(
                select(PredictionExplanation, Prediction)
                .join(Prediction, Prediction.id == PredictionExplanation.prediction_id)
                .where(PredictionExplanation.prediction_id == prediction_id)
            ).first()
            if found is None:
                raise NotFoundError(f"prediction {prediction_id} has no logged explanation")
            stored, prediction = found
            query = select(AuditEvent.details).where(
                AuditEvent.action == "prediction.create", AuditEvent.resource_id == prediction_id
            )
            if prediction.patient_ref is not None:  # indexed: finds the record at once
                query = query.where(AuditEvent.patient_ref == prediction.patient_ref)
            details = session.scalars(query).first()
            row = {name: getattr(stored, name) for name in EXPLANATION_FIELDS}
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="explanation.read",
                    resource_type="prediction",
                    resource_id=prediction_id,
                    patient_ref=prediction.patient_ref,
                    details={"deployment": prediction.deployment},
                ),
            )
        recorded = json.loads(details or "{}").get("explanation_digest")
        inputs: dict[str, Any] = json.loads(prediction.inputs)
        pairs = [(str(f), float(v)) for f, v in json.loads(stored.contributions)]
        order = sorted(range(len(pairs)), key=lambda j: (-abs(pairs[j][1]), j))
        contributions = [
            ContributionOut(
                feature=pairs[j][0],
                value=inputs.get(pairs[j][0]),
                contribution=pairs[j][1],
                direction="increases"
                if pairs[j][1] > 0
                else ("decreases" if pairs[j][1] < 0 else "none"),
                shown=rank < stored.shown,
            )
            for rank, j in enumerate(order)
        ]
        return ExplanationOut(
            prediction_id=prediction.id,
            deployment=prediction.deployment,
            model=prediction.model_name,
            version=prediction.version,
            occurred_at=prediction.occurred_at,
            method=stored.method,
            exact=stored.exact,
            scale=stored.scale,
            base_value=stored.base_value,
            output=stored.output,
            error_estimate=stored.error_estimate,
            score=prediction.score,
            contributions=contributions,
            audited=recorded is not None and recorded == explanation_digest(row),
        )
