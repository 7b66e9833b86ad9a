"""The pure pieces of tamper evidence, against reference computations."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from medops.audit import merkle
from medops.audit.chain import GENESIS, canonical, record_hash


def _reference_mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 2.1 written out as the RFC states it."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(
        b"\x01" + _reference_mth(leaves[:k]) + _reference_mth(leaves[k:])
    ).digest()


@pytest.mark.parametrize("seed", range(20))
def test_merkle_root_matches_the_rfc_definition(seed: int) -> None:
    """Random sizes 0..300 with random leaves give the reference root."""
    rng = random.Random(seed)
    leaves = [rng.randbytes(32) for _ in range(rng.randrange(0, 300))]
    assert merkle.root(leaves) == _reference_mth(leaves)


def test_merkle_distinguishes_leaves_from_nodes() -> None:
    """A two-leaf tree's root is not the leaf hash of the concatenation (prefixes differ)."""
    a, b = b"a" * 32, b"b" * 32
    assert merkle.root([a, b]) != merkle.leaf_hash(merkle.leaf_hash(a) + merkle.leaf_hash(b))


def _record(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "chain_id": "host-1-abcd",
        "chain_seq": 1,
        "prev_hash": GENESIS,
        "occurred_at": datetime(2026, 5, 1, 8, 30, 0, 123456, tzinfo=UTC),
        "actor_id": "u1",
        "actor_name": "ann",
        "actor_role": "clinician",
        "auth_method": "password",
        "action": "user.create",
        "resource_type": "user",
        "resource_id": "bob",
        "patient_ref": None,
        "outcome": "success",
        "reason": None,
        "source_ip": "10.0.0.1",
        "user_agent": "ua",
        "request_id": "r1",
        "details": '{"after":{"role":"clinician"}}',
    }
    return base | changes


def test_every_hashed_field_changes_the_hash() -> None:
    """Changing any one covered field, or the link, gives another hash."""
    original = record_hash(_record())
    for name, value in _record().items():
        other = "changed" if not isinstance(value, int | datetime) else value
        if isinstance(value, datetime):
            other = value + timedelta(microseconds=1)
        elif isinstance(value, int):
            other = value + 1
        assert record_hash(_record(**{name: other})) != original, name


def test_the_same_instant_in_another_zone_hashes_the_same() -> None:
    """Times are canonicalised to UTC, so a database's zone does not change a hash."""
    utc = _record()
    cet = _record(
        occurred_at=datetime(2026, 5, 1, 10, 30, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    )
    assert canonical(utc) == canonical(cet)
