"""Rows bound into the audit chain (audit/bindings.py, rowcheck.py): the digests cover
every field, the matcher names changed, inserted, deleted and doubly-recorded rows, and the
database check streams predictions in batches, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete

from medops.audit import bindings
from medops.audit.bindings import RowCheck
from medops.audit.checkpoints import record_rows, snapshot
from medops.audit.schemas import AuditEntry
from medops.rowcheck import check_rows
from medops.services import Services
from medops.serving.tables import Prediction
from tests.helpers.people import SYSTEM_CTX

WHEN = datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)


def _prediction(n: int) -> dict[str, Any]:
    return {
        "id": f"{n:032x}",
        "occurred_at": WHEN + timedelta(seconds=n),
        "deployment": "ward",
        "model_name": "risk",
        "version": 1,
        "artifact_digest": "a" * 64,
        "arm": "primary",
        "shadow": False,
        "cached": False,
        "requester": "carl",
        "patient_ref": f"p-{n}",
        "request_id": f"r-{n}",
        "inputs": json.dumps({"age": 40 + n}),
        "label": "1",
        "probabilities": json.dumps({"0": 0.25, "1": 0.75}),
        "latency_ms": 1.5,
        "metadata_json": None,
    }


@pytest.mark.parametrize("name", bindings.PREDICTION_FIELDS)
def test_the_prediction_digest_covers_every_bound_field(name: str) -> None:
    """Changing any one bound field of a prediction row changes its digest."""
    row = _prediction(1)
    changed = dict(row)
    value = row[name]
    if isinstance(value, bool):
        changed[name] = not value
    elif isinstance(value, int):
        changed[name] = value + 1
    elif isinstance(value, datetime):
        changed[name] = value + timedelta(microseconds=1)
    elif value is None:
        changed[name] = "{}"
    else:
        changed[name] = value + " "
    assert bindings.prediction_digest(changed) != bindings.prediction_digest(row)


def test_the_outcome_digest_covers_every_field_and_differs_from_a_predictions() -> None:
    """An outcome's digest changes with each field, and a kind tag keeps kinds apart."""
    row = {
        "prediction_id": "p" * 32,
        "label": "1",
        "observed_at": WHEN,
        "recorded_at": WHEN,
        "recorded_by": "carl",
    }
    for name in bindings.OUTCOME_FIELDS:
        changed = row | {name: "x"}
        assert bindings.outcome_digest(changed) != bindings.outcome_digest(row)
    assert bindings.outcome_digest(row) != bindings.prediction_digest(row)


def _record(seq: int, key: str, digest: str | None, chain: str = "c") -> dict[str, Any]:
    details = {"row_digest": digest} if digest else {}
    return {
        "seq": seq,
        "chain_id": chain,
        "action": "prediction.create",
        "outcome": "success",
        "resource_id": key,
        "details": json.dumps(details),
    }


def _check(records: list[dict[str, Any]], rows: list[tuple[str, str]]) -> list[tuple[Any, ...]]:
    check = RowCheck(
        "prediction",
        records,
        actions=bindings.PREDICTION_ACTIONS,
        key_of=lambda r: r["resource_id"],
        digest_of=bindings.row_digest_of,
        anchored=lambda r: r["chain_id"] != "legacy",
    )
    for key, digest in rows:
        check.row(key, digest)
    return check.finish()


def test_the_matcher_names_each_kind_of_tampering() -> None:
    """Changed, inserted, deleted, recorded twice, digest missing: each named; a legacy
    record without a digest is checked for existence only; failures do not count."""
    records = [
        _record(1, "a", "da"),
        _record(2, "b", "db"),
        _record(3, "c", "dc"),
        _record(4, "d", "dd"),
        _record(5, "d", "dd"),
        _record(6, "e", None),
        _record(7, "f", None, chain="legacy"),
        _record(8, "g", "dg") | {"outcome": "failure"},
    ]
    found = _check(
        records,
        [("a", "da"), ("b", "changed"), ("d", "dd"), ("e", "de"), ("f", "df"), ("x", "dx")],
    )
    named = {(seq, where): reason for seq, where, reason in found}
    assert named == {
        (2, "prediction b"): "row differs from its audit record (changed after it was written)",
        (5, "prediction d"): "more than one audit record for one row",
        (6, "prediction e"): "audit record carries no digest of its row",
        (None, "prediction x"): "row has no audit record (inserted outside medops?)",
        (3, "prediction c"): "row is missing (deleted?)",
    }


def test_predictions_are_checked_in_batches_from_one_snapshot(services: Services) -> None:
    """23 predictions read 5 at a time all match; a deleted one is then named by its record."""
    rows = [_prediction(n) for n in range(23)]
    with services.db.transaction() as session:
        for row in rows:
            services.audit.record(
                session,
                SYSTEM_CTX,
                AuditEntry(
                    action="prediction.create",
                    resource_type="prediction",
                    resource_id=row["id"],
                    patient_ref=row["patient_ref"],
                    details={"row_digest": bindings.prediction_digest(row)},
                ),
            )
            session.add(Prediction(**row))
    with snapshot(services.db) as session:
        counts, found = check_rows(session, record_rows(session), public_key=None, batch=5)
    assert counts == {"predictions": 23, "explanations": 0, "outcomes": 0, "signatures": 0}
    assert found == []

    victim = rows[17]["id"]
    with services.db.engine.begin() as connection:
        connection.execute(delete(Prediction).where(Prediction.id == victim))
    with snapshot(services.db) as session:
        records = record_rows(session)
        counts, found = check_rows(session, records, public_key=None, batch=5)
    assert counts["predictions"] == 22
    [(seq, where, reason)] = found
    assert where == f"prediction {victim}"
    assert reason == "row is missing (deleted?)"
    assert seq == next(r["seq"] for r in records if r["resource_id"] == victim)


def test_a_prediction_committed_after_the_snapshot_is_not_taken_for_an_insertion(
    services: Services,
) -> None:
    """Rows and records come from one snapshot, so a live server's new predictions (committed
    while verification runs) are not reported as rows without a record."""
    with snapshot(services.db) as session:
        records = record_rows(session)
        row = _prediction(99) | {"id": uuid.uuid4().hex}
        with services.db.transaction() as writer:
            services.audit.record(
                writer,
                SYSTEM_CTX,
                AuditEntry(
                    action="prediction.create",
                    resource_type="prediction",
                    resource_id=row["id"],
                    details={"row_digest": bindings.prediction_digest(row)},
                ),
            )
            writer.add(Prediction(**row))
        _, found = check_rows(session, records, public_key=None)
    assert found == []
