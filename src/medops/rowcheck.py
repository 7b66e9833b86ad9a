"""Read the rows the audit records account for and check each against its record.

The rows are the registry's signatures and serving's predictions, their explanations and
outcomes; this module sits above the three domains, and services.py hands ``check_rows`` to
the audit checkpointer.

Predictions, explanations and outcomes are read in batches by primary key (keyset
pagination), so a log of millions of predictions streams through ``bindings.RowCheck`` with one
batch in memory at a time; signatures are few and read at once. Runs inside the caller's read
session, so rows and records come from one snapshot (a prediction committed after the records
were read is not taken for one without a record).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Select, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from medops.audit import bindings
from medops.audit.anchor import OPEN_ACTION
from medops.audit.bindings import Finding, RowCheck
from medops.registry import approvals
from medops.registry.tables import Approval, ModelVersion, RegisteredModel
from medops.serving.tables import Outcome, Prediction, PredictionExplanation

BATCH = 5000


def check_rows(
    session: Session,
    records: Sequence[Mapping[str, Any]],
    public_key: Ed25519PublicKey | None,
    *,
    batch: int = BATCH,
) -> tuple[dict[str, int], list[Finding]]:
    """Check every prediction, explanation, outcome and signature row against the audit
    records; returns how many rows of each kind were read, and what does not match."""
    anchored_chains = {
        r["chain_id"] for r in records if r.get("chain_seq") == 1 and r.get("action") == OPEN_ACTION
    }

    def anchored(record: Mapping[str, Any]) -> bool:
        return record.get("chain_id") in anchored_chains

    def resource(record: Mapping[str, Any]) -> str | None:
        value = record.get("resource_id")
        return value if isinstance(value, str) else None

    predictions = RowCheck(
        "prediction",
        records,
        actions=bindings.PREDICTION_ACTIONS,
        key_of=resource,
        digest_of=bindings.row_digest_of,
        anchored=anchored,
    )
    columns = [
        getattr(Prediction, name) for name in (*bindings.PREDICTION_FIELDS, "features", "score")
    ]
    for rows in _batches(session, columns, Prediction.id, batch):
        for row in rows:
            predictions.row(row["id"], bindings.prediction_digest(row))

    def explained(record: Mapping[str, Any]) -> str | None:
        return resource(record) if bindings.explanation_digest_of(record) else None

    explanations = RowCheck(
        "explanation of prediction",
        records,
        actions=bindings.PREDICTION_ACTIONS,
        key_of=explained,
        digest_of=bindings.explanation_digest_of,
        anchored=lambda _record: True,  # only records that carry a digest are keyed
    )
    columns = [getattr(PredictionExplanation, name) for name in bindings.EXPLANATION_FIELDS]
    for rows in _batches(session, columns, PredictionExplanation.prediction_id, batch):
        for row in rows:
            explanations.row(row["prediction_id"], bindings.explanation_digest(row))

    outcomes = RowCheck(
        "outcome of prediction",
        records,
        actions=bindings.OUTCOME_ACTIONS,
        key_of=resource,
        digest_of=bindings.row_digest_of,
        anchored=anchored,
    )
    columns = [getattr(Outcome, name) for name in bindings.OUTCOME_FIELDS]
    for rows in _batches(session, columns, Outcome.prediction_id, batch):
        for row in rows:
            outcomes.row(row["prediction_id"], bindings.outcome_digest(row))

    signatures = RowCheck(
        "signature",
        records,
        actions=bindings.APPROVAL_ACTIONS,
        key_of=bindings.approval_key_of,
        digest_of=bindings.approval_digest_of,
        anchored=lambda _record: True,  # model.approve has carried its manifest hash always
    )
    countersigned = _approvals(session, signatures, public_key)
    counts = {
        "predictions": predictions.rows,
        "explanations": explanations.rows,
        "outcomes": outcomes.rows,
        "signatures": signatures.rows,
    }
    return counts, [
        *predictions.finish(),
        *explanations.finish(),
        *outcomes.finish(),
        *signatures.finish(),
        *countersigned,
    ]


def _approvals(
    session: Session, check: RowCheck, public_key: Ed25519PublicKey | None
) -> list[Finding]:
    """Feed the signature rows to ``check`` (each by the manifest recomputed from the row);
    with a key, also check the server's countersignature of each stored manifest hash."""
    found: list[Finding] = []
    rows = session.execute(
        select(Approval, RegisteredModel.name, ModelVersion.version)
        .join(ModelVersion, Approval.version_id == ModelVersion.id)
        .join(RegisteredModel, ModelVersion.model_id == RegisteredModel.id)
        .order_by(Approval.id)
    ).all()
    for approval, model, version in rows:
        manifest = approvals.manifest(approval, model=model, version=version)
        check.row(approval.id, approvals.sha256_json(manifest))
        if public_key is not None and not _countersigned(approval, public_key):
            reason = "the server's countersignature of its manifest does not verify"
            found.append((None, f"signature {approval.id}", reason))
    orphans = session.scalars(
        select(Approval.id).where(Approval.version_id.not_in(select(ModelVersion.id)))
    ).all()
    for orphan in orphans:  # a signature moved to a version that does not exist
        check.row(orphan, "")
    return found


def _countersigned(row: Approval, key: Ed25519PublicKey) -> bool:
    try:
        key.verify(base64.b64decode(row.server_signature), row.manifest_hash.encode())
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


def _batches(
    session: Session,
    columns: Sequence[InstrumentedAttribute[Any]],
    key: InstrumentedAttribute[str],
    size: int,
) -> Iterator[Sequence[Mapping[str, Any]]]:
    """The rows in key order, ``size`` at a time (keyset pagination: no OFFSET scans)."""
    last: str | None = None
    while True:
        statement: Select[Any] = select(*columns).order_by(key).limit(size)
        if last is not None:
            statement = statement.where(key > last)
        rows = [dict(row) for row in session.execute(statement).mappings()]
        if rows:
            yield rows
        if len(rows) < size:
            return
        last = rows[-1][key.key]
