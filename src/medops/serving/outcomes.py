"""Outcomes: the ground truth of earlier predictions, for monitoring with delayed labels.

An outcome names one of the model version's class labels. Recording the same outcome again
changes nothing (uploads can be retried); a different label for a prediction that has one is
refused, since a silent overwrite would rewrite the performance history. A CSV upload is
checked whole before anything is stored: one bad row refuses the file, listing every problem.

An outcome's ``observed_at`` is checked against the prediction and the clock: not before the
prediction was made, and not later than the server's now plus CLOCK_SKEW (a sender's clock
may run a little ahead); a time outside is refused, naming the field, and nothing is stored.
"""

from __future__ import annotations

import csv
import io
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
from medops.db.engine import Database
from medops.errors import ConflictError, FieldError, InvalidInputError, NotFoundError, clip
from medops.registry.models import ModelVersion, RegisteredModel
from medops.registry.signature import ModelSignature
from medops.serving.models import Outcome, Prediction
from medops.serving.schemas import OutcomeIn, OutcomeOut, OutcomeUploadOut

MAX_UPLOAD_ROWS = 100_000
CSV_COLUMNS = ("prediction_id", "label", "observed_at")
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

    def upload(self, ctx: Context, content: bytes) -> OutcomeUploadOut:
        """Attach the outcomes of a CSV (prediction_id,label[,observed_at]); all or nothing."""
        rows = self._parse_csv(content)
        errors: list[FieldError] = []
        created = unchanged = 0
        with self._db.transaction() as session:
            for i, (prediction_id, label, observed_at) in enumerate(rows):
                try:
                    _, new = self._attach(
                        session,
                        ctx,
                        prediction_id,
                        label,
                        observed_at,
                        f"rows[{i}].label",
                        f"rows[{i}].observed_at",
                        row_field=f"rows[{i}]",
                    )
                except (InvalidInputError, NotFoundError, ConflictError) as exc:
                    errors.extend(exc.errors or [FieldError(f"rows[{i}]", exc.message)])
                    continue
                created += new
                unchanged += not new
            if errors:
                session.rollback()
                raise InvalidInputError(
                    f"the file was not stored ({len(errors)} problem"
                    f"{'s' if len(errors) > 1 else ''}; first: {errors[0].field}: "
                    f"{errors[0].reason})",
                    errors=errors[:50],
                )
        return OutcomeUploadOut(rows=len(rows), created=created, unchanged=unchanged)

    @staticmethod
    def _parse_csv(content: bytes) -> list[tuple[str, str, datetime | None]]:
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidInputError(
                "the file is not UTF-8 text", errors=[FieldError("file", "not UTF-8")]
            ) from None
        try:
            return OutcomeService._rows(csv.DictReader(io.StringIO(text)))
        except csv.Error as exc:
            raise InvalidInputError(
                f"the file is not a readable CSV: {exc}", errors=[FieldError("file", str(exc))]
            ) from None

    @staticmethod
    def _rows(reader: csv.DictReader[str]) -> list[tuple[str, str, datetime | None]]:
        header = reader.fieldnames or []
        missing = [c for c in CSV_COLUMNS[:2] if c not in header]
        extra = [c for c in header if c not in CSV_COLUMNS]
        if missing or extra:
            problems = [FieldError(c, "missing column") for c in missing]
            problems += [FieldError(clip(c), "unknown column") for c in extra]
            raise InvalidInputError(
                "the CSV needs the columns prediction_id,label and optionally observed_at",
                errors=problems,
            )
        rows: list[tuple[str, str, datetime | None]] = []
        errors: list[FieldError] = []
        for i, row in enumerate(reader):
            if i >= MAX_UPLOAD_ROWS:
                raise InvalidInputError(
                    f"more than {MAX_UPLOAD_ROWS} rows; split the file",
                    errors=[FieldError("file", f"over {MAX_UPLOAD_ROWS} rows")],
                )
            observed: datetime | None = None
            text_at = (row.get("observed_at") or "").strip()
            if text_at:
                try:
                    observed = datetime.fromisoformat(text_at)
                except ValueError:
                    errors.append(FieldError(f"rows[{i}].observed_at", "not an ISO 8601 time"))
                    continue
                if observed.tzinfo is None:
                    errors.append(
                        FieldError(f"rows[{i}].observed_at", "needs a time zone (e.g. Z)")
                    )
                    continue
            rows.append(
                ((row.get("prediction_id") or "").strip(), row.get("label") or "", observed)
            )
        if errors:
            raise InvalidInputError(
                f"the file was not stored ({len(errors)} problems; first: "
                f"{errors[0].field}: {errors[0].reason})",
                errors=errors[:50],
            )
        if not rows:
            raise InvalidInputError("the file has no rows", errors=[FieldError("file", "no rows")])
        return rows

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
    ) -> tuple[OutcomeOut, bool]:
        actor = require_actor(ctx)
        prediction = session.get(Prediction, prediction_id) if prediction_id else None
        if prediction is None or prediction.shadow:
            shown = clip(prediction_id)
            raise NotFoundError(
                f"no prediction {shown!r}",
                errors=[FieldError(row_field, f"no prediction {shown!r}")],
            )
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
                },
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
