"""The hash chain of audit records: canonical serialization, record hashes and MACs. Pure.

Each writer (one per server process) appends to its own chain. A record's hash is
SHA-256 over its canonical serialization, which includes its chain id, its position in the
chain and the previous record's hash, so editing, removing, inserting or reordering records
breaks the chain at the first record touched.

A chain anyone could compute is no proof of who wrote it: someone with write access to the
database can append a self-consistent record. So each record also carries a MAC of its hash
(HMAC-SHA256 under a key derived from the audit signing key, ``signing.mac_key``): only a
holder of the signing key can make one, and the checkpointer checks every MAC before it signs.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from medops.core.canonical import canonical_bytes, utc_text

GENESIS = "0" * 64

# The fields a record's hash covers, in this order (the storage sequence number is not
# hashed: it is assigned by the database at insert, after the hash is computed; nor is the
# MAC, which is taken over the hash).
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
    """A field's value as hashed: times as UTC text (naive times refused), the rest as is."""
    if isinstance(value, datetime):
        return utc_text(value)
    return value


def canonical(record: Mapping[str, Any]) -> bytes:
    """The bytes a record's hash is computed over: JSON of HASHED_FIELDS, sorted, compact."""
    return canonical_bytes({field: canonical_value(record.get(field)) for field in HASHED_FIELDS})


def record_hash(record: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the record's canonical serialization (prev_hash included)."""
    return hashlib.sha256(canonical(record)).hexdigest()


def record_mac(key: bytes, digest: str) -> str:
    """Hex HMAC-SHA256 of a record's hash under the writer's MAC key."""
    return hmac.new(key, digest.encode(), hashlib.sha256).hexdigest()


def mac_matches(key: bytes, digest: str, mac: object) -> bool:
    """Whether ``mac`` is the MAC of ``digest`` (compared in constant time)."""
    return isinstance(mac, str) and hmac.compare_digest(record_mac(key, digest), mac)


def link_findings(
    chain_id: str,
    members: Sequence[Mapping[str, Any]],
    before: Mapping[str, Any] | None = None,
) -> list[tuple[int | None, str, str]]:
    """Check a run of one chain's records (in chain order) that follows ``before`` (None: the
    run starts the chain): positions, links and hashes. Each finding is (seq, where, why)."""
    found: list[tuple[int | None, str, str]] = []
    position = int(before["chain_seq"]) + 1 if before is not None else 1
    prev = str(before["hash"]) if before is not None else GENESIS
    for record in members:
        where = f"chain {chain_id} #{record['chain_seq']}"
        try:
            digest = record_hash(record)
        except (TypeError, ValueError, AttributeError) as exc:
            found.append((record["seq"], where, f"cannot be read: {exc}"))
            prev = str(record.get("hash"))
            position += 1
            continue
        if record["chain_seq"] != position:
            found.append(
                (record["seq"], where, f"expected #{position}: a record is missing or extra")
            )
        elif record["prev_hash"] != prev:
            found.append((record["seq"], where, "does not link to the record before it"))
        elif digest != record["hash"]:
            found.append((record["seq"], where, "content does not match its hash"))
        prev = record["hash"]
        position += 1
    return found
