"""Verify audit chains and checkpoints; pure functions over rows, no database.

``verify`` recomputes every record's hash and link, every checkpoint's Merkle root, chain
heads, signature and link to the previous checkpoint, and compares checkpoints exported to a
second location with the database's. It reports every problem and names the first.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from medops.audit import merkle
from medops.audit.chain import GENESIS, record_hash

__all__ = ["GENESIS", "Problem", "Report", "checkpoint_body", "checkpoint_digest", "verify"]

CHECKPOINT_FIELDS = (
    "created_at",
    "from_seq",
    "to_seq",
    "record_count",
    "merkle_root",
    "chain_heads",
    "previous",
    "key_id",
)


@dataclass(frozen=True)
class Problem:
    """One thing that does not verify; ``seq`` is the record's sequence number if known."""

    seq: int | None
    where: str
    reason: str


@dataclass
class Report:
    records: int = 0
    chains: int = 0
    checkpoints: int = 0
    exported: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        """The problem at the lowest sequence number (or the first found without one)."""
        if not self.problems:
            return None
        with_seq = [p for p in self.problems if p.seq is not None]
        return min(with_seq, key=lambda p: p.seq or 0) if with_seq else self.problems[0]


def checkpoint_body(checkpoint: Mapping[str, Any]) -> bytes:
    """The signed bytes of a checkpoint."""
    body = {name: checkpoint[name] for name in CHECKPOINT_FIELDS}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def checkpoint_digest(checkpoint: Mapping[str, Any]) -> str:
    """What the next checkpoint's ``previous`` must hold: SHA-256 of body and signature."""
    return hashlib.sha256(
        checkpoint_body(checkpoint) + checkpoint["signature"].encode()
    ).hexdigest()


def merkle_root_of(records: Sequence[Mapping[str, Any]]) -> str:
    ordered = sorted(records, key=lambda r: r["seq"])
    return merkle.root([bytes.fromhex(r["hash"]) for r in ordered]).hex()


def verify(
    records: Sequence[Mapping[str, Any]],
    checkpoints: Sequence[Mapping[str, Any]] = (),
    *,
    exported: Sequence[Mapping[str, Any]] = (),
    public_key: Ed25519PublicKey | None = None,
) -> Report:
    """Check every chain and checkpoint; see the module docstring."""
    report = Report(records=len(records), checkpoints=len(checkpoints), exported=len(exported))
    problems = report.problems
    chains: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        chains[record["chain_id"]].append(record)
    report.chains = len(chains)
    for chain_id, members in chains.items():
        prev = GENESIS
        for position, record in enumerate(sorted(members, key=lambda r: r["chain_seq"]), 1):
            where = f"chain {chain_id} #{record['chain_seq']}"
            if record["chain_seq"] != position:
                problems.append(
                    Problem(
                        record["seq"], where, f"expected #{position}: a record is missing or extra"
                    )
                )
            elif record["prev_hash"] != prev:
                problems.append(
                    Problem(record["seq"], where, "does not link to the record before it")
                )
            elif record_hash(record) != record["hash"]:
                problems.append(Problem(record["seq"], where, "content does not match its hash"))
            prev = record["hash"]

    by_position = {(r["chain_id"], r["chain_seq"]): r for r in records}
    previous = GENESIS
    for checkpoint in checkpoints:
        _check_checkpoint(checkpoint, records, by_position, previous, public_key, problems)
        previous = checkpoint_digest(checkpoint)

    stored = {c["to_seq"]: c for c in checkpoints}
    for copy in exported:
        where = f"exported checkpoint up to seq {copy['to_seq']}"
        original = stored.get(copy["to_seq"])
        if original is None:
            problems.append(Problem(None, where, "is missing from the database"))
        elif checkpoint_body(original) != checkpoint_body(copy) or (
            original["signature"] != copy["signature"]
        ):
            problems.append(Problem(None, where, "differs from the database's"))
        elif "public_key" in copy and not _signed(copy, _key(copy["public_key"])):
            problems.append(Problem(None, where, "signature does not verify"))
    return report


def _check_checkpoint(
    checkpoint: Mapping[str, Any],
    records: Sequence[Mapping[str, Any]],
    by_position: Mapping[tuple[str, int], Mapping[str, Any]],
    previous: str,
    public_key: Ed25519PublicKey | None,
    problems: list[Problem],
) -> None:
    where = f"checkpoint up to seq {checkpoint['to_seq']}"
    if public_key is not None and not _signed(checkpoint, public_key):
        problems.append(Problem(None, where, "signature does not verify"))
    if checkpoint["previous"] != previous:
        problems.append(Problem(None, where, "does not link to the checkpoint before it"))
    covered = [r for r in records if checkpoint["from_seq"] <= r["seq"] <= checkpoint["to_seq"]]
    if (
        len(covered) != checkpoint["record_count"]
        or merkle_root_of(covered) != checkpoint["merkle_root"]
    ):
        problems.append(
            Problem(
                checkpoint["from_seq"],
                where,
                f"records {checkpoint['from_seq']}..{checkpoint['to_seq']} differ from the "
                f"{checkpoint['record_count']} it signed (changed, removed, added or reordered)",
            )
        )
    for chain_id, (chain_seq, digest) in json.loads(checkpoint["chain_heads"]).items():
        head = by_position.get((chain_id, chain_seq))
        if head is None or head["hash"] != digest:
            problems.append(
                Problem(
                    None,
                    f"chain {chain_id} #{chain_seq}",
                    f"the head signed by the {where} is missing or changed (truncated?)",
                )
            )


def _key(b64: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(b64))


def _signed(checkpoint: Mapping[str, Any], key: Ed25519PublicKey) -> bool:
    try:
        key.verify(base64.b64decode(checkpoint["signature"]), checkpoint_body(checkpoint))
    except (InvalidSignature, ValueError):
        return False
    return True
