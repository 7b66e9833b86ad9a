"""Verify audit chains and checkpoints; pure functions over rows, no database.

``verify`` recomputes every record's hash and link, checks that every chain is anchored and
dated forward (``anchor.py``: signed openings, MACs, monotonic time), every checkpoint's Merkle
root, chain heads, signature and link to the previous checkpoint, and compares checkpoints
exported to a second location with the database's. It reports every problem and names the
first. The rows the records account for (predictions, outcomes, signatures) are checked
against them by ``bindings.py``.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from medops.audit import anchor, merkle
from medops.audit.chain import GENESIS, link_findings
from medops.audit.schemas import ProblemOut, VerificationOut
from medops.core.canonical import canonical_bytes

__all__ = [
    "GENESIS",
    "Problem",
    "Report",
    "checkpoint_body",
    "checkpoint_digest",
    "summary",
    "verify",
]
SHOWN_PROBLEMS = 100

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
    kind: str = "record"  # "record" (a chain problem), "checkpoint", "export" or "row"


@dataclass
class Report:
    records: int = 0
    chains: int = 0
    checkpoints: int = 0
    exported: int = 0
    anchored_chains: int = 0
    legacy_chains: int = 0
    macs_checked: bool = False
    rows: dict[str, int] = field(default_factory=dict)  # rows checked against records, by kind
    problems: list[Problem] = field(default_factory=list)
    # What this verification could not check (no key, no exported copies), in words.
    limits: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        """The first bad record: the chain problem at the lowest sequence number; failing
        that, the first checkpoint or export problem."""
        records = [p for p in self.problems if p.kind == "record" and p.seq is not None]
        if records:
            return min(records, key=lambda p: p.seq or 0)
        return self.problems[0] if self.problems else None


def summary(report: Report) -> VerificationOut:
    """What the CLI and the API answer: counts, the first problem, and the first 100."""
    first = report.first
    return VerificationOut(
        ok=report.ok,
        records=report.records,
        chains=report.chains,
        anchored_chains=report.anchored_chains,
        legacy_chains=report.legacy_chains,
        checkpoints=report.checkpoints,
        exported_checkpoints=report.exported,
        rows=report.rows,
        macs_checked=report.macs_checked,
        problems=len(report.problems),
        first_bad_seq=first.seq if first else None,
        first_problem=f"{first.where}: {first.reason}" if first else None,
        findings=[
            ProblemOut(seq=p.seq, where=p.where, reason=p.reason, kind=p.kind)
            for p in report.problems[:SHOWN_PROBLEMS]
        ],
        limits=report.limits,
    )


def checkpoint_body(checkpoint: Mapping[str, Any]) -> bytes:
    """The signed bytes of a checkpoint."""
    return canonical_bytes({name: checkpoint[name] for name in CHECKPOINT_FIELDS}, ascii_only=True)


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
    mac_key: bytes | None = None,
) -> Report:
    """Check every chain and checkpoint; see the module docstring. Openings' signatures need
    ``public_key``; records' MACs need ``mac_key`` (derived from the signing key itself)."""
    report = Report(records=len(records), checkpoints=len(checkpoints), exported=len(exported))
    problems = report.problems
    chains = _check_chains(records, problems)
    report.chains = len(chains)
    index = anchor.checkpointed(checkpoints, [checkpoint_digest(c) for c in checkpoints])
    anchoring = anchor.check(chains, index, public_key=public_key, mac_key=mac_key)
    problems.extend(Problem(seq, where, reason) for seq, where, reason in anchoring.findings)
    report.anchored_chains, report.legacy_chains = anchoring.anchored, anchoring.legacy
    report.macs_checked = mac_key is not None
    if anchoring.anchored and public_key is None:
        reason = "chain openings cannot be checked without the public key (--public-key)"
        problems.append(Problem(None, "chain openings", reason, "opening"))
    _limits(report, public_key, mac_key, exported)

    by_position = {(r["chain_id"], r["chain_seq"]): r for r in records}
    ordered = sorted(records, key=lambda r: r["seq"])
    seqs = [r["seq"] for r in ordered]
    if checkpoints and public_key is None:
        reason = "signatures cannot be checked without the public key (--public-key)"
        problems.append(Problem(None, "checkpoints", reason, "checkpoint"))
    previous = GENESIS
    for checkpoint in checkpoints:
        low = bisect.bisect_left(seqs, checkpoint["from_seq"])
        high = bisect.bisect_right(seqs, checkpoint["to_seq"])
        covered = ordered[low:high]
        _check_checkpoint(checkpoint, covered, by_position, previous, public_key, problems)
        previous = checkpoint_digest(checkpoint)

    stored = {c["to_seq"]: c for c in checkpoints}
    for copy in exported:
        where = f"exported checkpoint up to seq {copy['to_seq']}"
        original = stored.get(copy["to_seq"])
        if public_key is not None and not _signed(copy, public_key):
            problems.append(Problem(None, where, "signature does not verify", "export"))
        elif original is None:
            problems.append(Problem(None, where, "is missing from the database", "export"))
        elif checkpoint_body(original) != checkpoint_body(copy) or (
            original["signature"] != copy["signature"]
        ):
            problems.append(Problem(None, where, "differs from the database's", "export"))
    return report


def _limits(
    report: Report,
    public_key: Ed25519PublicKey | None,
    mac_key: bytes | None,
    exported: Sequence[Mapping[str, Any]],
) -> None:
    if public_key is None:
        report.limits.append(
            "no public key: checkpoint signatures and chain openings are not checked"
        )
    if mac_key is None:
        report.limits.append(
            "no signing key: record MACs are not checked, so a record appended to a chain "
            "after the last checkpoint by someone without the key is not told apart"
        )
    if not exported:
        report.limits.append(
            "no exported checkpoints: removing the checkpoints together with the records "
            "they cover is not caught"
        )


def _check_chains(
    records: Sequence[Mapping[str, Any]], problems: list[Problem]
) -> dict[str, list[Mapping[str, Any]]]:
    """Recompute every chain's positions, links and hashes; returns each chain's records in
    chain order."""
    chains: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        chains[record["chain_id"]].append(record)
    for chain_id, members in chains.items():
        members.sort(key=_chain_order)
        problems.extend(Problem(*finding) for finding in link_findings(chain_id, members))
    return chains


def _check_checkpoint(
    checkpoint: Mapping[str, Any],
    covered: Sequence[Mapping[str, Any]],
    by_position: Mapping[tuple[str, int], Mapping[str, Any]],
    previous: str,
    public_key: Ed25519PublicKey | None,
    problems: list[Problem],
) -> None:
    """``covered``: the records with from_seq <= seq <= to_seq, in seq order."""
    where = f"checkpoint up to seq {checkpoint['to_seq']}"
    if public_key is not None and not _signed(checkpoint, public_key):
        problems.append(Problem(None, where, "signature does not verify", "checkpoint"))
    if checkpoint["previous"] != previous:
        reason = "does not link to the checkpoint before it"
        problems.append(Problem(None, where, reason, "checkpoint"))
    if (
        len(covered) != checkpoint["record_count"]
        or merkle_root_of(covered) != checkpoint["merkle_root"]
    ):
        reason = (
            f"records {checkpoint['from_seq']}..{checkpoint['to_seq']} differ from the "
            f"{checkpoint['record_count']} it signed (changed, removed, added or reordered)"
        )
        problems.append(Problem(checkpoint["from_seq"], where, reason, "checkpoint"))
    for chain_id, (chain_seq, digest) in json.loads(checkpoint["chain_heads"]).items():
        head = by_position.get((chain_id, chain_seq))
        if head is None or head["hash"] != digest:
            reason = f"the head signed by the {where} is missing or changed (truncated?)"
            problems.append(Problem(None, f"chain {chain_id} #{chain_seq}", reason, "checkpoint"))


def _chain_order(record: Mapping[str, Any]) -> tuple[int, str]:
    position = record["chain_seq"]
    return (position, "") if isinstance(position, int) else (-1, str(position))


def _key(b64: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(b64))


def _signed(checkpoint: Mapping[str, Any], key: Ed25519PublicKey) -> bool:
    try:
        key.verify(base64.b64decode(checkpoint["signature"]), checkpoint_body(checkpoint))
    except (InvalidSignature, ValueError):
        return False
    return True
