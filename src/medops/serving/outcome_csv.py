"""Reading outcomes: which prediction each names, its label and its times (no database).

An outcome names its prediction in one of two ways:

* by ``prediction_id`` (the id the predict answer gave);
* by ``patient_ref`` and time, on a deployment: the latest prediction of that patient on that
  deployment (shadow predictions excluded) made at or before ``observed_at`` and no more than
  the look-back before it (``lookback_days``, 30 by default); or, with ``predicted_from`` and
  ``predicted_to``, the latest made within that window (both ends inclusive; ``predicted_to``
  defaults to ``observed_at``, ``predicted_from`` to ``predicted_to`` minus the look-back).
  No prediction in the window, or two made at the same latest time, refuses the outcome.

A CSV has a ``label`` column, ``prediction_id`` and/or ``patient_ref``, and optionally
``observed_at``, ``deployment``, ``predicted_from`` and ``predicted_to``; each row fills
exactly one of ``prediction_id`` and ``patient_ref``. A row matched by patient takes its
deployment from its ``deployment`` cell, else from the upload's ``deployment`` parameter.
Every row is read before any is stored, and every problem is listed (the first 50).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from medops.errors import FieldError, InvalidInputError, clip
from medops.serving.schemas import patient_ref_problem

MAX_UPLOAD_ROWS: Final = 100_000
MAX_LISTED: Final = 50
COLUMNS: Final = (
    "prediction_id",
    "patient_ref",
    "deployment",
    "label",
    "observed_at",
    "predicted_from",
    "predicted_to",
)
WINDOW_COLUMNS: Final = ("predicted_from", "predicted_to")


@dataclass(frozen=True)
class PatientMatch:
    """Find the prediction of ``patient_ref`` on ``deployment`` made in ``start``..``end``:
    the latest one (ties refused)."""

    deployment: str
    patient_ref: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class OutcomeRow:
    """One outcome to attach: to ``prediction_id``, or to the prediction ``match`` finds."""

    index: int
    label: str
    observed_at: datetime | None
    prediction_id: str | None = None
    match: PatientMatch | None = None
    deployment: str | None = None  # a prediction_id row's deployment cell, when filled


def match_window(
    observed_at: datetime | None,
    predicted_from: datetime | None,
    predicted_to: datetime | None,
    lookback: timedelta,
    where: str = "",
) -> tuple[datetime, datetime]:
    """The times (``start``, ``end``, inclusive) a matched prediction may have; raises
    naming the field (``where`` prefixes it, e.g. ``rows[3].``) when there is no window."""
    end = predicted_to if predicted_to is not None else observed_at
    if end is None:
        reason = "needed to match by patient_ref (or give predicted_to)"
        raise InvalidInputError(
            f"{where}observed_at is {reason}", errors=[FieldError(f"{where}observed_at", reason)]
        )
    if predicted_from is not None:
        start = predicted_from
    else:
        try:
            start = end - lookback
        except OverflowError:  # an end near year 1: the window reaches back to the start
            start = datetime.min.replace(tzinfo=UTC)
    if start > end:
        field = f"{where}predicted_from"
        reason = "is after the window's end (predicted_to, or observed_at)"
        raise InvalidInputError(f"{field} {reason}", errors=[FieldError(field, reason)])
    return start, end


def _time(text: str | None, field: str, errors: list[FieldError]) -> datetime | None:
    value = (text or "").strip()
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        errors.append(FieldError(field, "not an ISO 8601 time"))
        return None
    if parsed.tzinfo is None:
        errors.append(FieldError(field, "needs a time zone (e.g. Z)"))
        return None
    return parsed


def _refused(errors: list[FieldError]) -> InvalidInputError:
    total = len(errors)
    return InvalidInputError(
        f"the file was not stored ({total} problem{'s' if total > 1 else ''}; first: "
        f"{errors[0].field}: {errors[0].reason})",
        errors=errors[:MAX_LISTED],
    )


def read_outcome_csv(
    content: bytes, *, deployment: str | None, lookback: timedelta
) -> list[OutcomeRow]:
    """The rows of an outcome CSV; raises listing every problem (nothing is stored then).
    ``deployment`` is the upload's default for rows matched by patient."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInputError(
            "the file is not UTF-8 text", errors=[FieldError("file", "not UTF-8")]
        ) from None
    reader = csv.DictReader(io.StringIO(text))
    try:
        return _rows(reader, deployment, lookback)
    except csv.Error as exc:
        raise InvalidInputError(
            f"the file is not a readable CSV: {exc}", errors=[FieldError("file", str(exc))]
        ) from None


def _check_header(header: list[str]) -> None:
    problems = [FieldError(clip(c), "unknown column") for c in header if c not in COLUMNS]
    if "label" not in header:
        problems.insert(0, FieldError("label", "missing column"))
    if "prediction_id" not in header and "patient_ref" not in header:
        problems.insert(0, FieldError("prediction_id", "missing column (or patient_ref)"))
    if problems:
        raise InvalidInputError(
            "the CSV needs a label column and a prediction_id or patient_ref column "
            "(optional: observed_at, deployment, predicted_from, predicted_to)",
            errors=problems,
        )


def _rows(
    reader: csv.DictReader[str], default_deployment: str | None, lookback: timedelta
) -> list[OutcomeRow]:
    _check_header(list(reader.fieldnames or []))
    rows: list[OutcomeRow] = []
    errors: list[FieldError] = []
    for i, cells in enumerate(reader):
        if i >= MAX_UPLOAD_ROWS:
            raise InvalidInputError(
                f"more than {MAX_UPLOAD_ROWS} rows; split the file",
                errors=[FieldError("file", f"over {MAX_UPLOAD_ROWS} rows")],
            )
        row = _row(i, cells, default_deployment, lookback, errors)
        if row is not None:
            rows.append(row)
    if errors:
        raise _refused(errors)
    if not rows:
        raise InvalidInputError("the file has no rows", errors=[FieldError("file", "no rows")])
    return rows


def _row(
    i: int,
    cells: dict[str, str],
    default_deployment: str | None,
    lookback: timedelta,
    errors: list[FieldError],
) -> OutcomeRow | None:
    """One row, or None with its problems added to ``errors``."""
    where = f"rows[{i}]"
    found = len(errors)
    observed_at = _time(cells.get("observed_at"), f"{where}.observed_at", errors)
    start = _time(cells.get("predicted_from"), f"{where}.predicted_from", errors)
    end = _time(cells.get("predicted_to"), f"{where}.predicted_to", errors)
    prediction_id = (cells.get("prediction_id") or "").strip()
    patient_ref = (cells.get("patient_ref") or "").strip()
    stated = (cells.get("deployment") or "").strip() or None
    deployment = stated or default_deployment
    label = cells.get("label") or ""
    if prediction_id and patient_ref:
        errors.append(FieldError(where, "give prediction_id or patient_ref, not both"))
    elif prediction_id:
        errors.extend(
            FieldError(f"{where}.{c}", "only for rows matched by patient_ref")
            for c in WINDOW_COLUMNS
            if (cells.get(c) or "").strip()
        )
        if len(errors) == found:
            return OutcomeRow(i, label, observed_at, prediction_id, deployment=stated)
    elif patient_ref:
        problem = patient_ref_problem(patient_ref)
        if problem is not None:
            errors.append(FieldError(f"{where}.patient_ref", problem))
        if not deployment:
            errors.append(
                FieldError(
                    f"{where}.deployment",
                    "needed to match by patient_ref: add a deployment column or the "
                    "deployment parameter (--deployment)",
                )
            )
        if len(errors) == found:
            assert deployment is not None
            try:
                first, last = match_window(observed_at, start, end, lookback, f"{where}.")
            except InvalidInputError as exc:
                errors.extend(exc.errors)
                return None
            match = PatientMatch(deployment, patient_ref, first, last)
            return OutcomeRow(i, label, observed_at, match=match)
    else:
        errors.append(FieldError(where, "give prediction_id or patient_ref"))
    return None
