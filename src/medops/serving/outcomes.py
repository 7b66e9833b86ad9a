"""Outcomes: the ground truth of earlier predictions, for monitoring with delayed labels.

An outcome names one of the model version's class labels. Recording the same outcome again
changes nothing (uploads can be retried); a different label for a prediction that has one is
refused, since a silent overwrite would rewrite the performance history. A CSV upload is
checked whole before anything is stored: one bad row refuses the file, listing every problem.
An outcome names its prediction by id, or by patient reference and time on a deployment
(the rule is in outcome_csv.py): no match, or two predictions at the same time, refuses it.

An outcome's ``observed_at`` is checked against the prediction and the clock: not before the
prediction was made, and not later than the server's now plus CLOCK_SKEW (a sender's clock
may run a little ahead); a time outside is refused, naming the field, and nothing is stored.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from medops.audit.bindings import OUTCOME_FIELDS, outcome_digest
from medops.audit.schemas import AuditEntry
from medops.audit.service import AuditService
from medops.auth.common import require_actor
from medops.clock import Clock
from medops.context import Context
from medops.core.signature import ModelSignature
from medops.db.engine import Database
from medops.errors import ConflictError, FieldError, InvalidInputError, NotFoundError, clip
from medops.registry.tables import ModelVersion, RegisteredModel
from medops.serving.outcome_csv import MAX_LISTED, PatientMatch, match_window, read_outcome_csv
from medops.serving.schemas import (
    LOOKBACK_DAYS_DEFAULT,
    OutcomeIn,
    OutcomeMatchIn,
    OutcomeOut,
    OutcomeUploadOut,
)
from medops.serving.tables import Deployment, Outcome, Prediction

CLOCK_SKEW: Final = timedelta(minutes=5)


def observed_at_problem(observed_at: datetime, predicted_at: datetime, now: datetime) -> str | None:
    """Why ``observed_at`` cannot be the time of an outcome of a prediction made at
    ``predicted_at``, judged at ``now``; None when it can."""
    if observed_at < predicted_at:
        return f"is before the prediction ({predicted_at.isoformat()})"
    if observed_at > now + CLOCK_SKEW:
        minutes = int(CLOCK_SKEW.total_seconds() // 60)
        return f"is in the future (later than now plus {minutes} minutes of clock skew)"
    return None


def _matching_label(signature: ModelSignature, value: object) -> Any:
    """The class label ``value`` stands for (CSV sends text: "1" means 1)."""
    for label in signature.outputs.class_labels:
        if label == value and type(label) is type(value):
            return label
    for label in signature.outputs.class_labels:
        if str(label) == str(value) or (
            isinstance(label, bool) and str(value).lower() == str(label).lower()
        ):
            return label
    return None


def _matched_details(match: PatientMatch | None) -> dict[str, Any]:
    """How the prediction was found, for the audit record (the patient reference is in the
    record's own field)."""
    if match is None:
        return {}
    return {
        "matched_by": "patient_ref",
        "window": [match.start.isoformat(), match.end.isoformat()],
    }


class OutcomeService:
    """Attach outcomes to predictions; every one audited with its patient reference."""

    def __init__(self, db: Database, clock: Clock, audit: AuditService) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._signatures: dict[tuple[str, int], ModelSignature] = {}

    def _signature(self, session: Session, prediction: Prediction) -> ModelSignature:
        key = (prediction.model_name, prediction.version)
        if key not in self._signatures:
            row = session.scalars(
                select(ModelVersion)
                .join(RegisteredModel, ModelVersion.model_id == RegisteredModel.id)
                .where(
                    RegisteredModel.name == prediction.model_name,
                    ModelVersion.version == prediction.version,
                )
            ).one()
            self._signatures[key] = ModelSignature.model_validate_json(row.signature)
        return self._signatures[key]

    def record(self, ctx: Context, prediction_id: str, data: OutcomeIn) -> OutcomeOut:
        """Attach the outcome of one prediction."""
        with self._db.transaction() as session:
            out, _ = self._attach(
                session, ctx, prediction_id, data.label, data.observed_at, "label", "observed_at"
            )
            return out

    def record_for_patient(self, ctx: Context, deployment: str, data: OutcomeMatchIn) -> OutcomeOut:
        """Attach an outcome to the prediction of ``data.patient_ref`` on ``deployment`` that
        the time rule finds (outcome_csv.py): the latest at or before ``observed_at`` within
        the look-back, or the latest within ``predicted_from``..``predicted_to``."""
        start, end = match_window(
            data.observed_at,
            data.predicted_from,
            data.predicted_to,
            timedelta(days=data.lookback_days),
        )
        match = PatientMatch(deployment, data.patient_ref, start, end)
        with self._db.transaction() as session:
            prediction = self._find(session, match, "patient_ref", "deployment")
            out, _ = self._attach(
                session,
                ctx,
                prediction.id,
                data.label,
                data.observed_at,
                "label",
                "observed_at",
                matched=match,
            )
            return out

    def upload(
        self,
        ctx: Context,
        content: bytes,
        *,
        deployment: str | None = None,
        lookback_days: float = LOOKBACK_DAYS_DEFAULT,
    ) -> OutcomeUploadOut:
        """Attach the outcomes of a CSV (see outcome_csv.py for its columns); all or nothing.
        ``deployment`` is the default of rows matched by patient reference."""
        rows = read_outcome_csv(
            content, deployment=deployment, lookback=timedelta(days=lookback_days)
        )
        errors: list[FieldError] = []
        created = unchanged = matched = 0
        known: set[str] = set()
        with self._db.transaction() as session:
            for row in rows:
                where = f"rows[{row.index}]"
                try:
                    prediction_id = row.prediction_id or ""
                    if row.match is not None:
                        found = self._find(
                            session,
                            row.match,
                            f"{where}.patient_ref",
                            f"{where}.deployment",
                            known,
                        )
                        prediction_id = found.id
                    _, new = self._attach(
                        session,
                        ctx,
                        prediction_id,
                        row.label,
                        row.observed_at,
                        f"{where}.label",
                        f"{where}.observed_at",
                        row_field=where,
                        matched=row.match,
                        deployment=row.deployment,
                        deployment_field=f"{where}.deployment",
                    )
                except (InvalidInputError, NotFoundError, ConflictError) as exc:
                    errors.extend(exc.errors or [FieldError(where, exc.message)])
                    continue
                created += new
                unchanged += not new
                matched += row.match is not None
            if errors:
                session.rollback()
                raise InvalidInputError(
                    f"the file was not stored ({len(errors)} problem"
                    f"{'s' if len(errors) > 1 else ''}; first: {errors[0].field}: "
                    f"{errors[0].reason})",
                    errors=errors[:MAX_LISTED],
                )
        return OutcomeUploadOut(
            rows=len(rows), created=created, unchanged=unchanged, matched=matched
        )

    @staticmethod
    def _find(
        session: Session,
        match: PatientMatch,
        field: str,
        deployment_field: str,
        known: set[str] | None = None,
    ) -> Prediction:
        """The prediction ``match`` names: the latest non-shadow prediction of the patient
        on the deployment within the window; none, or two at that time, is refused.
        ``known`` holds deployment names already found (an upload's rows share them)."""
        known = set() if known is None else known
        if match.deployment not in known:
            found = session.scalar(select(Deployment.id).where(Deployment.name == match.deployment))
            if found is None:
                reason = f"no deployment named {clip(match.deployment)!r}"
                raise InvalidInputError(reason, errors=[FieldError(deployment_field, reason)])
            known.add(match.deployment)
        latest = session.scalars(
            select(Prediction)
            .where(
                Prediction.deployment == match.deployment,
                Prediction.patient_ref == match.patient_ref,
                Prediction.shadow.is_(False),
                Prediction.occurred_at >= match.start,
                Prediction.occurred_at <= match.end,
            )
            .order_by(Prediction.occurred_at.desc(), Prediction.id)
            .limit(2)
        ).all()
        # The patient reference is never repeated in an error: it goes into the audit
        # record's reason, and a refusal names the row instead.
        if not latest:
            reason = (
                f"no prediction of this patient on {match.deployment} from "
                f"{match.start.isoformat()} to {match.end.isoformat()} (shadow predictions "
                "are not matched; widen the window with lookback_days or predicted_from)"
            )
            raise InvalidInputError(reason, errors=[FieldError(field, reason)])
        if len(latest) == 2 and latest[0].occurred_at == latest[1].occurred_at:
            reason = (
                f"two predictions of this patient on {match.deployment} at the same time "
                f"({latest[0].occurred_at.isoformat()}): {latest[0].id} and {latest[1].id}; "
                "give the prediction_id"
            )
            raise InvalidInputError(reason, errors=[FieldError(field, reason)])
        return latest[0]

    def _attach(
        self,
        session: Session,
        ctx: Context,
        prediction_id: str,
        value: object,
        observed_at: datetime | None,
        label_field: str,
        time_field: str,
        *,
        row_field: str = "prediction_id",
        matched: PatientMatch | None = None,
        deployment: str | None = None,
        deployment_field: str = "deployment",
    ) -> tuple[OutcomeOut, bool]:
        actor = require_actor(ctx)
        prediction = session.get(Prediction, prediction_id) if prediction_id else None
        if prediction is None or prediction.shadow:
            shown = clip(prediction_id)
            raise NotFoundError(
                f"no prediction {shown!r}",
                errors=[FieldError(row_field, f"no prediction {shown!r}")],
            )
        if deployment is not None and deployment != prediction.deployment:
            reason = f"the prediction was made by the deployment {prediction.deployment}"
            raise InvalidInputError(reason, errors=[FieldError(deployment_field, reason)])
        if observed_at is not None:
            problem = observed_at_problem(observed_at, prediction.occurred_at, self._clock.now())
            if problem is not None:
                raise InvalidInputError(
                    f"{time_field} {problem}", errors=[FieldError(time_field, problem)]
                )
        signature = self._signature(session, prediction)
        label = _matching_label(signature, value)
        if label is None:
            classes = ", ".join(map(str, signature.outputs.class_labels))
            raise InvalidInputError(
                f"{clip(value)!r} is not a class of {prediction.model_name}/{prediction.version} "
                f"({classes})",
                errors=[FieldError(label_field, f"not one of the model's classes: {classes}")],
            )
        existing = session.get(Outcome, prediction_id)
        if existing is not None:
            if json.loads(existing.label) == label:
                return self._out(existing, created=False), False
            raise ConflictError(
                f"prediction {prediction_id} already has the outcome {json.loads(existing.label)!r}"
                f" (recorded by {existing.recorded_by}); outcomes are not overwritten",
                errors=[FieldError(label_field, "the prediction already has another outcome")],
            )
        row = Outcome(
            prediction_id=prediction_id,
            label=json.dumps(label),
            observed_at=observed_at,
            recorded_at=self._clock.now(),
            recorded_by=actor.username,
        )
        self._audit.record(
            session,
            ctx,
            AuditEntry(
                action="outcome.record",
                resource_type="prediction",
                resource_id=prediction_id,
                patient_ref=prediction.patient_ref,
                details={
                    "deployment": prediction.deployment,
                    "model": prediction.model_name,
                    "version": prediction.version,
                    # Binds the row into the chain: audit verify recomputes it from the row.
                    "row_digest": outcome_digest({f: getattr(row, f) for f in OUTCOME_FIELDS}),
                }
                | _matched_details(matched),
            ),
        )
        session.add(row)
        session.flush()
        return self._out(row, created=True), True

    @staticmethod
    def _out(row: Outcome, *, created: bool) -> OutcomeOut:
        return OutcomeOut(
            prediction_id=row.prediction_id,
            label=json.loads(row.label),
            observed_at=row.observed_at,
            recorded_at=row.recorded_at,
            recorded_by=row.recorded_by,
            created=created,
        )
