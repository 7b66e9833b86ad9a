"""The hash chain of audit records: canonical serialization and record hashes. Pure.

Each writer (one per server process) appends to its own chain. A record's hash is
SHA-256 over its canonical serialization, which includes its chain id, its position in the
chain and the previous record's hash, so editing, removing, inserting or reordering records
breaks the chain at the first record touched.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64

# The fields a record's hash covers, in this order (the storage sequence number is not
# hashed: it is assigned by the database at insert, after the hash is computed).
HASHED_FIELDS = (
    "chain_id",
    "chain_seq",
    "prev_hash",
    "occurred_at",
    "actor_id",
    "actor_name",
    "actor_role",
    "auth_method",
    "action",
    "resource_type",
    "resource_id",
    "patient_ref",
    "outcome",
    "reason",
    "source_ip",
    "user_agent",
    "request_id",
    "details",
)


def canonical_value(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            msg = "audit times must be timezone-aware"
            raise ValueError(msg)
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value


def canonical(record: Mapping[str, Any]) -> bytes:
    """The bytes a record's hash is computed over: JSON of HASHED_FIELDS, sorted, compact."""
    body = {field: canonical_value(record.get(field)) for field in HASHED_FIELDS}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(record: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the record's canonical serialization (prev_hash included)."""
    return hashlib.sha256(canonical(record)).hexdigest()
