"""Rows bound into the audit chain: predictions, their explanations, outcomes and signatures.
Pure.

A ``prediction.create``/``prediction.shadow`` record carries ``row_digest``, SHA-256 over the
canonical JSON of the prediction row it accounts for (``PREDICTION_FIELDS``: id, time,
deployment, model, version, artifact digest, arm, shadow flag, requester, patient reference,
request id, inputs, label, probabilities and metadata, as stored; and, on rows logged
since migration 0013, the packed features and the score that monitoring reads); an
``outcome.record`` record the digest of the outcome row (``OUTCOME_FIELDS``); a
``model.approve`` record the signature's manifest hash, which covers every field of the
signature row that was signed (approvals.py). An explained prediction's record also carries
``explanation_digest``, the digest of its explanation row (``EXPLANATION_FIELDS``).

``RowCheck`` matches stored rows with their records, one row at a time as the rows stream in:
a row whose content differs from its record's digest was changed; a row with no record was
inserted outside medops; a record whose row never came was deleted. It holds the records of
its kind (which verification has read already) and a sorted index of their keys, never the
rows.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from medops.audit.chain import canonical_value
from medops.core.canonical import canonical_bytes

PREDICTION_SCHEMA = "medops.prediction-row/1"
# A row that also holds its features packed for monitoring, and its score (migration 0013).
PACKED_PREDICTION_SCHEMA = "medops.prediction-row/2"
OUTCOME_SCHEMA = "medops.outcome-row/1"
EXPLANATION_SCHEMA = "medops.prediction-explanation/1"
PREDICTION_ACTIONS = frozenset({"prediction.create", "prediction.shadow"})
OUTCOME_ACTIONS = frozenset({"outcome.record"})
APPROVAL_ACTIONS = frozenset({"model.approve"})

# Column values as the ORM holds them (``metadata_json`` is the column ``metadata``).
PREDICTION_FIELDS = (
    "id",
    "occurred_at",
    "deployment",
    "model_name",
    "version",
    "artifact_digest",
    "arm",
    "shadow",
    "requester",
    "patient_ref",
    "request_id",
    "inputs",
    "label",
    "probabilities",
    "metadata_json",
)
OUTCOME_FIELDS = ("prediction_id", "label", "observed_at", "recorded_at", "recorded_by")

Finding = tuple[int | None, str, str]


def _digest(schema: str, fields: Sequence[str], row: Mapping[str, Any]) -> str:
    body = {name: canonical_value(row.get(name)) for name in fields}
    body["schema"] = schema
    return hashlib.sha256(canonical_bytes(body)).hexdigest()


def prediction_digest(row: Mapping[str, Any]) -> str:
    """The ``row_digest`` of a prediction row (its stored values, JSON columns as text). A row
    with packed features is bound with them and its score (hex and number), so what
    monitoring reads cannot be changed without breaking the row's digest either."""
    packed = row.get("features")
    if packed is None:
        return _digest(PREDICTION_SCHEMA, PREDICTION_FIELDS, row)
    body = {name: canonical_value(row.get(name)) for name in PREDICTION_FIELDS}
    body["features"] = bytes(packed).hex()
    body["score"] = row.get("score")
    body["schema"] = PACKED_PREDICTION_SCHEMA
    return hashlib.sha256(canonical_bytes(body)).hexdigest()


def outcome_digest(row: Mapping[str, Any]) -> str:
    """The ``row_digest`` of an outcome row."""
    return _digest(OUTCOME_SCHEMA, OUTCOME_FIELDS, row)


# An explained prediction's ``prediction_explanations`` row, bound by ``explanation_digest``
# in the prediction's own record (migration 0022).
EXPLANATION_FIELDS = (
    "prediction_id",
    "method",
    "exact",
    "scale",
    "base_value",
    "output",
    "error_estimate",
    "shown",
    "contributions",
)


def explanation_digest(row: Mapping[str, Any]) -> str:
    """SHA-256 over the canonical JSON of an explanation row (as stored): the prediction's
    audit record carries it, so a changed explanation no longer matches its record."""
    body = {name: row.get(name) for name in EXPLANATION_FIELDS}
    body["schema"] = EXPLANATION_SCHEMA
    return hashlib.sha256(canonical_bytes(body)).hexdigest()


def explanation_digest_of(record: Mapping[str, Any]) -> str | None:
    """The explanation digest a prediction record carries (None: it was not explained)."""
    digest = details_of(record).get("explanation_digest")
    return digest if isinstance(digest, str) else None


def details_of(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record's details as a dict (empty when absent or unreadable)."""
    try:
        details = json.loads(record.get("details") or "{}")
    except (TypeError, ValueError):
        return {}
    return details if isinstance(details, dict) else {}


def row_digest_of(record: Mapping[str, Any]) -> str | None:
    """The row digest a prediction or outcome record carries."""
    digest = details_of(record).get("row_digest")
    return digest if isinstance(digest, str) else None


def approval_key_of(record: Mapping[str, Any]) -> str | None:
    """The signature id a ``model.approve`` record names."""
    after = details_of(record).get("after")
    key = after.get("signature") if isinstance(after, dict) else None
    return key if isinstance(key, str) else None


def approval_digest_of(record: Mapping[str, Any]) -> str | None:
    """The manifest hash a ``model.approve`` record carries."""
    after = details_of(record).get("after")
    digest = after.get("manifest_hash") if isinstance(after, dict) else None
    return digest if isinstance(digest, str) else None


class RowCheck:
    """Matches one kind of stored row with the successful audit records of ``actions``."""

    def __init__(
        self,
        kind: str,
        records: Sequence[Mapping[str, Any]],
        *,
        actions: frozenset[str],
        key_of: Callable[[Mapping[str, Any]], str | None],
        digest_of: Callable[[Mapping[str, Any]], str | None],
        anchored: Callable[[Mapping[str, Any]], bool],
    ) -> None:
        self.kind = kind
        self._digest_of = digest_of
        self._anchored = anchored
        keyed = []
        for record in records:
            if record.get("action") in actions and record.get("outcome") == "success":
                key = key_of(record)
                if key is not None:
                    keyed.append((key, record))
        keyed.sort(key=lambda pair: (pair[0], pair[1]["seq"]))
        self._keys = [key for key, _ in keyed]
        self._records = [record for _, record in keyed]
        self._seen = bytearray(len(keyed))
        self.rows = 0
        self.findings: list[Finding] = []

    def row(self, key: str, digest: str) -> None:
        """Check one stored row (its key and the digest of its content as stored)."""
        self.rows += 1
        low = bisect.bisect_left(self._keys, key)
        high = bisect.bisect_right(self._keys, key)
        where = f"{self.kind} {key}"
        if low == high:
            self.findings.append(
                (None, where, "row has no audit record (inserted outside medops?)")
            )
            return
        for position in range(low, high):
            self._seen[position] = 1
        record = self._records[low]
        if high - low > 1:
            extra = self._records[low + 1]
            self.findings.append((extra["seq"], where, "more than one audit record for one row"))
        expected = self._digest_of(record)
        if expected is None:
            if self._anchored(record):
                reason = "audit record carries no digest of its row"
                self.findings.append((record["seq"], where, reason))
        elif expected != digest:
            reason = "row differs from its audit record (changed after it was written)"
            self.findings.append((record["seq"], where, reason))

    def finish(self) -> list[Finding]:
        """Add a finding for each record whose row never came; returns every finding."""
        for position, seen in enumerate(self._seen):
            if not seen:
                record = self._records[position]
                where = f"{self.kind} {self._keys[position]}"
                reason = "row is missing (deleted?)"
                self.findings.append((record["seq"], where, reason))
        return self.findings
