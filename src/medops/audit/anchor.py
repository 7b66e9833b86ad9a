"""Anchored chains and monotonic time: the rules that stop forged or backdated chains. Pure.

Hashes alone prove nothing about who wrote a chain: anyone with write access to the database
can insert a self-consistent one (new chain id, #1 from GENESIS, an old date). So:

* **Every chain is anchored.** Its first record is an ``audit.chain.open`` record whose
  details carry an Ed25519 signature, by the audit signing key, over the chain id, the opening
  time and the last checkpoint the writer saw. Without the key nobody can start a chain.
* **Every record is authenticated.** Each record of an anchored chain carries a MAC of its
  hash (``chain.record_mac``); appending to someone else's chain needs the key too.
* **Time only moves forward.** Within an anchored chain, ``occurred_at`` never goes back (the
  writer holds a clock that stepped back at its chain's last time); and no record that an
  earlier checkpoint does not cover may be dated before that checkpoint was signed, less
  ``CLOCK_TOLERANCE`` (a transaction's time between dating its record and committing it, plus
  the clock difference between replicas).
* **Chains from before anchoring are grandfathered.** Chains written by a release without
  openings are accepted when they began before the first signed opening in the log (the
  upgrade), and only records dated within ``LEGACY_GRACE`` of that opening may follow it
  (servers of the old release still stopping); a forged chain inserted later, or a record
  appended to an old chain later, is reported.

What each rule needs: the MAC needs the signing key itself (the server and ``medops audit
verify`` next to the key file); an opening's signature needs only the public key; the time
rules and the grandfathering need no key.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from medops.audit import signing
from medops.audit.chain import canonical_value, mac_matches
from medops.core.canonical import canonical_bytes, utc_text

OPEN_ACTION = "audit.chain.open"
OPEN_SCHEMA = "medops.audit-chain-open/1"
CLOCK_TOLERANCE = timedelta(minutes=5)
LEGACY_GRACE = timedelta(hours=1)

# (sequence number or None, where, reason): what verify turns into a Problem.
Finding = tuple[int | None, str, str]


def opening_body(chain_id: str, opened_at: str, after: Mapping[str, Any] | None) -> bytes:
    """The signed bytes of a chain's opening."""
    return canonical_bytes(
        {
            "schema": OPEN_SCHEMA,
            "chain_id": chain_id,
            "opened_at": opened_at,
            "after_checkpoint": dict(after) if after is not None else None,
        }
    )


def opening_details(
    key: Ed25519PrivateKey,
    chain_id: str,
    opened_at: datetime,
    after: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The details of an ``audit.chain.open`` record: what is signed, the key id, the
    signature. ``after``: ``{"to_seq", "digest"}`` of the last checkpoint, None before any."""
    when = utc_text(opened_at)
    signature = key.sign(opening_body(chain_id, when, after))
    return {
        "schema": OPEN_SCHEMA,
        "chain_id": chain_id,
        "opened_at": when,
        "after_checkpoint": dict(after) if after is not None else None,
        "key_id": signing.key_id(key.public_key()),
        "signature": base64.b64encode(signature).decode(),
    }


def opening_of(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """An opening record's details, or None when they are not a readable opening."""
    try:
        details = json.loads(record.get("details") or "")
    except (TypeError, ValueError):
        return None
    if not isinstance(details, dict) or details.get("schema") != OPEN_SCHEMA:
        return None
    after = details.get("after_checkpoint")
    if after is not None and not (
        isinstance(after, dict)
        and isinstance(after.get("to_seq"), int)
        and isinstance(after.get("digest"), str)
    ):
        return None
    return details


def opening_problem(record: Mapping[str, Any], public_key: Ed25519PublicKey | None) -> str | None:
    """Why the record is not a valid opening of its chain; None when it is (the signature is
    checked only when ``public_key`` is given)."""
    details = opening_of(record)
    if details is None:
        return "is not a readable chain opening"
    try:
        opened_at = canonical_value(record.get("occurred_at"))
    except ValueError:
        opened_at = None
    if details.get("chain_id") != record.get("chain_id") or details.get("opened_at") != opened_at:
        return "opening names another chain or time than its record's"
    if public_key is None:
        return None
    try:
        public_key.verify(
            base64.b64decode(str(details.get("signature")), validate=True),
            opening_body(str(record["chain_id"]), opened_at, details.get("after_checkpoint")),
        )
    except (InvalidSignature, ValueError, binascii.Error):
        return "opening is not signed by the audit key: chain started without the signing key"
    return None


@dataclass
class Checkpointed:
    """What the time rules need of the signed checkpoints: (to_seq, created_at, digest) in
    to_seq order."""

    to_seqs: list[int] = field(default_factory=list)
    created: list[datetime | None] = field(default_factory=list)
    digests: dict[int, str] = field(default_factory=dict)

    def previous(self, seq: int) -> tuple[int, datetime | None] | None:
        """The last checkpoint that ends before ``seq``: (its to_seq, its creation time)."""
        index = bisect.bisect_left(self.to_seqs, seq) - 1
        return (self.to_seqs[index], self.created[index]) if index >= 0 else None


def checkpointed(checkpoints: Sequence[Mapping[str, Any]], digests: Sequence[str]) -> Checkpointed:
    """Index checkpoints (``created_at`` as canonical UTC text) for the time rules."""
    index = Checkpointed()
    for checkpoint, digest in sorted(
        zip(checkpoints, digests, strict=True), key=lambda pair: int(pair[0]["to_seq"])
    ):
        index.to_seqs.append(int(checkpoint["to_seq"]))
        index.created.append(_time(checkpoint.get("created_at")))
        index.digests[int(checkpoint["to_seq"])] = digest
    return index


def _time(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


@dataclass
class Anchoring:
    """How the chains of a log are anchored; ``findings`` lists what breaks a rule."""

    anchored: int = 0
    legacy: int = 0
    first_opening: tuple[int, datetime] | None = None
    findings: list[Finding] = field(default_factory=list)


def valid_opening(record: Mapping[str, Any], public_key: Ed25519PublicKey | None) -> bool:
    """Whether ``record`` opens its chain validly (signature checked when a key is given)."""
    return (
        record.get("action") == OPEN_ACTION
        and record.get("chain_seq") == 1
        and isinstance(record.get("occurred_at"), datetime)
        and opening_problem(record, public_key) is None
    )


def check(
    chains: Mapping[str, Sequence[Mapping[str, Any]]],
    index: Checkpointed,
    *,
    public_key: Ed25519PublicKey | None,
    mac_key: bytes | None,
) -> Anchoring:
    """Apply the module's rules to a whole log: ``chains``, each chain's records in order."""
    result = Anchoring()
    openings = [
        (int(members[0]["seq"]), members[0]["occurred_at"])
        for members in chains.values()
        if members and valid_opening(members[0], public_key)
    ]
    result.first_opening = min(openings) if openings else None
    for chain_id, members in chains.items():
        if not members:
            continue
        anchored = members[0].get("action") == OPEN_ACTION
        result.anchored += anchored
        result.legacy += not anchored
        result.findings.extend(
            chain_findings(
                chain_id,
                members,
                first=members[0],
                before=None,
                first_opening=result.first_opening,
                index=index,
                public_key=public_key,
                mac_key=mac_key,
            )
        )
    return result


def chain_findings(
    chain_id: str,
    members: Sequence[Mapping[str, Any]],
    *,
    first: Mapping[str, Any],
    before: Mapping[str, Any] | None,
    first_opening: tuple[int, datetime] | None,
    index: Checkpointed,
    public_key: Ed25519PublicKey | None,
    mac_key: bytes | None,
) -> list[Finding]:
    """The rules for a run of one chain's records (``members``, in chain order): ``first`` is
    the chain's first record, ``before`` the record just before the run (None when the run
    starts the chain), ``first_opening`` the (seq, time) of the log's first valid opening."""
    found: list[Finding] = []
    anchored = first.get("action") == OPEN_ACTION
    where = f"chain {chain_id} #{first.get('chain_seq')}"
    if anchored:
        problem = opening_problem(first, public_key)
        if problem is not None:
            found.append((first["seq"], where, problem))
        else:
            found.extend(_reference(first, where, index))
    elif first_opening is not None:
        found.extend(_grandfathered(first, members, *first_opening))
    floor = before.get("occurred_at") if before is not None else None
    found.extend(_chain_rules(chain_id, members, anchored, mac_key, floor))
    found.extend(_not_backdated(chain_id, members, index))
    return found


def _reference(opening: Mapping[str, Any], where: str, index: Checkpointed) -> list[Finding]:
    """An opening must come after the checkpoint it names, which must exist as named."""
    details = opening_of(opening) or {}
    after = details.get("after_checkpoint")
    if after is None:
        return []
    if index.digests.get(after["to_seq"]) != after["digest"]:
        reason = f"opening names a checkpoint up to seq {after['to_seq']} that is not stored"
        return [(opening["seq"], where, reason)]
    if int(opening["seq"]) <= after["to_seq"]:
        reason = f"opening is placed before the checkpoint up to seq {after['to_seq']} it names"
        return [(opening["seq"], where, reason)]
    return []


def _chain_rules(
    chain_id: str,
    members: Sequence[Mapping[str, Any]],
    anchored: bool,
    mac_key: bytes | None,
    floor: object,
) -> list[Finding]:
    """Within one chain: one opening, at #1; time never backwards; every MAC valid."""
    found: list[Finding] = []
    previous = floor if isinstance(floor, datetime) else None
    for record in members:
        where = f"chain {chain_id} #{record.get('chain_seq')}"
        if record.get("chain_seq") != 1 and record.get("action") == OPEN_ACTION:
            found.append((record["seq"], where, "a chain opening inside a chain"))
        when = record.get("occurred_at")
        if anchored and isinstance(when, datetime):
            if previous is not None and when < previous:
                reason = "dated before the record before it in its chain (backdated?)"
                found.append((record["seq"], where, reason))
            previous = when if previous is None else max(previous, when)
        mac = record.get("mac")
        if (
            mac_key is not None
            and (anchored or mac is not None)
            and not mac_matches(mac_key, str(record.get("hash")), mac)
        ):
            reason = "has no valid MAC: not written by a holder of the audit signing key"
            found.append((record["seq"], where, reason))
    return found


def _grandfathered(
    first: Mapping[str, Any],
    members: Sequence[Mapping[str, Any]],
    first_opening: int,
    opened_at: datetime,
) -> list[Finding]:
    """A chain without an opening must have begun before the first opening, and may follow
    it only within LEGACY_GRACE."""
    where = f"chain {first.get('chain_id')} #{first.get('chain_seq')}"
    if int(first["seq"]) > first_opening:
        reason = (
            f"chain has no signed opening ({OPEN_ACTION}) and began after anchoring did "
            f"(seq {first_opening}): started without the signing key"
        )
        return [(first["seq"], where, reason)]
    limit = opened_at + LEGACY_GRACE
    for record in members:
        when = record.get("occurred_at")
        late = isinstance(when, datetime) and when > limit
        if int(record["seq"]) > first_opening and late:
            where = f"chain {record.get('chain_id')} #{record.get('chain_seq')}"
            reason = (
                "a chain without a signed opening was written to more than "
                f"{_hours(LEGACY_GRACE)} after anchoring began"
            )
            return [(record["seq"], where, reason)]
    return []


def _not_backdated(
    chain_id: str, members: Sequence[Mapping[str, Any]], index: Checkpointed
) -> list[Finding]:
    """No record is dated before the checkpoint before it was signed, less CLOCK_TOLERANCE."""
    found: list[Finding] = []
    if not index.to_seqs:
        return found
    for record in members:
        when = record.get("occurred_at")
        seq = record.get("seq")
        if not isinstance(when, datetime) or not isinstance(seq, int):
            continue
        before = index.previous(seq)
        if before is None:
            continue
        to_seq, created = before
        if created is not None and when < created - CLOCK_TOLERANCE:
            reason = (
                f"dated {utc_text(when)}, before the checkpoint up to seq {to_seq} that does "
                f"not cover it was signed ({utc_text(created)}; tolerance "
                f"{int(CLOCK_TOLERANCE.total_seconds())} s): backdated"
            )
            found.append((seq, f"chain {chain_id} #{record.get('chain_seq')}", reason))
    return found


def _hours(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:g} hour" + ("" if hours == 1 else "s")
