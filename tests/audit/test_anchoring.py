"""Anchored chains, record MACs and monotonic time (audit/anchor.py), and the upgrade of an
installation whose chains predate them, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Table, insert, select, text

from medops.audit import anchor, signing
from medops.audit.chain import GENESIS, HASHED_FIELDS, record_hash
from medops.audit.checkpoints import checkpoint_rows, record_rows, verify_database
from medops.audit.schemas import AuditEntry
from medops.audit.tables import AuditEvent
from medops.audit.verify import Report, checkpoint_body, merkle_root_of, verify
from medops.config import Settings
from medops.db import migrate
from medops.db.engine import Database
from medops.errors import AuditTamperedError
from medops.rowcheck import check_rows
from medops.services import Services, build_services
from medops.testing import FixedClock
from tests.helpers.cli_runner import Cli, clean_env
from tests.helpers.people import SYSTEM_CTX


def _write(services: Services, action: str = "test.write", **extra: Any) -> None:
    with services.db.transaction() as session:
        services.audit.record(session, SYSTEM_CTX, AuditEntry(action=action, **extra))


def _verify(services: Services) -> Report:
    key, mac_key = services.audit.signing_keys()
    report, _ = verify_database(
        services.db, rows=check_rows, public_key=key.public_key(), mac_key=mac_key
    )
    return report


def _chain(services: Services) -> list[dict[str, Any]]:
    rows = record_rows(services.db)
    return [r for r in rows if r["chain_id"] == services.audit.chain_id]


def test_every_chain_begins_with_an_opening_signed_by_the_audit_key(services: Services) -> None:
    """The first record of a writer's chain is audit.chain.open, signed over the chain id,
    its time and the last checkpoint; it verifies with the audit key and with no other."""
    _write(services)
    assert services.checkpoints.checkpoint() is not None
    _write(services)
    first, *rest = _chain(services)
    assert first["action"] == anchor.OPEN_ACTION
    assert anchor.opening_problem(first, services.audit.signing_keys()[0].public_key()) is None
    details = json.loads(first["details"])
    assert details["chain_id"] == services.audit.chain_id
    assert details["after_checkpoint"] is None
    assert [r["action"] for r in rest] == ["test.write", "audit.checkpoint", "test.write"]
    assert _verify(services).ok

    other = Ed25519PrivateKey.generate().public_key()
    report, _ = verify_database(services.db, rows=check_rows, public_key=other)
    assert first["seq"] in {p.seq for p in report.problems}

    # A second writer (another process) opens its own chain after the checkpoint and names it.
    second = build_services(services.settings, clock=services.clock)
    try:
        _write(second)
        opening = _chain(second)[0]
        after = json.loads(opening["details"])["after_checkpoint"]
        assert after["to_seq"] == checkpoint_rows(services.db)[0]["to_seq"]
        assert _verify(second).ok
    finally:
        second.close()


def test_without_the_public_key_openings_are_not_trusted(services: Services) -> None:
    """Verification without a key fails rather than vouch for openings it cannot check."""
    _write(services)
    report = verify(record_rows(services.db))
    assert not report.ok
    assert report.first is not None
    assert "without the public key" in report.first.reason
    assert any("MACs are not checked" in limit for limit in report.limits)


def test_a_clock_stepped_back_never_dates_a_record_before_the_one_before_it(
    services: Services, clock: FixedClock
) -> None:
    """The writer holds its chain's last time when the clock goes back, so time is monotonic."""
    _write(services)
    before = _chain(services)[-1]["occurred_at"]
    clock.set(before - timedelta(hours=1))
    _write(services)
    assert _chain(services)[-1]["occurred_at"] == before
    assert _verify(services).ok


@pytest.mark.parametrize(
    ("skew", "caught"), [(timedelta(minutes=4), False), (timedelta(minutes=6), True)]
)
def test_a_record_dated_before_the_last_checkpoint_beyond_the_tolerance_is_backdated(
    services: Services, clock: FixedClock, skew: timedelta, caught: bool
) -> None:
    """A replica whose clock is behind by less than CLOCK_TOLERANCE (5 min) passes; more is
    reported as backdated, and the checkpointer refuses to sign it."""
    _write(services)
    services.checkpoints.checkpoint()
    behind = build_services(services.settings, clock=FixedClock(clock.now() - skew))
    try:
        _write(behind)
        seq = _chain(behind)[0]["seq"]  # its opening, the first record it dated
    finally:
        behind.close()
    report = _verify(services)
    assert report.ok is not caught
    if caught:
        assert report.first is not None
        assert report.first.seq == seq
        assert "backdated" in report.first.reason
        with pytest.raises(AuditTamperedError, match="backdated"):
            services.checkpoints.checkpoint()
    else:
        assert services.checkpoints.checkpoint() is not None


def test_the_cli_refuses_a_forged_range_and_signs_it_only_when_told_why(
    services: Services, settings: Settings
) -> None:
    """'medops audit checkpoint' exits 1 in one line; --accept-problems signs the range (the
    reason is recorded) and verification still names the forged record."""
    _write(services)
    forged = dict.fromkeys(HASHED_FIELDS) | {
        "chain_id": "intruder",
        "chain_seq": 1,
        "prev_hash": GENESIS,
        "occurred_at": services.clock.now(),
        "action": "user.create",
        "outcome": "success",
    }
    forged["hash"] = record_hash(forged)
    with services.db.engine.begin() as connection:
        connection.execute(insert(AuditEvent).values(**forged))
    cli = Cli(
        clean_env(MEDOPS_HOME=str(settings.home), MEDOPS_DATABASE_URL=str(settings.database_url))
    )
    refused = cli("audit", "checkpoint")
    assert refused.code == 1
    assert len(refused.err.strip().splitlines()) == 1
    assert "audit checkpoint refused" in refused.err
    signed = cli.ok(
        "audit", "checkpoint", "--accept-problems", "incident 42 investigated", "--json"
    )
    assert signed.json()["to_seq"] >= 2
    with services.db.session() as session:
        record = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "audit.checkpoint", AuditEvent.outcome == "success"
            )
        ).one()
    assert "incident 42 investigated" in (record.reason or "")
    report = _verify(services)
    assert report.first is not None
    assert "no signed opening" in report.first.reason


# -- an installation from before anchoring, upgraded ------------------------------------


def _legacy_record(chain: str, position: int, prev: str, when: datetime, n: int) -> dict[str, Any]:
    record: dict[str, Any] = dict.fromkeys(HASHED_FIELDS) | {
        "chain_id": chain,
        "chain_seq": position,
        "prev_hash": prev,
        "occurred_at": when,
        "actor_id": "system",
        "actor_name": "system",
        "action": "user.create",
        "resource_type": "user",
        "resource_id": f"user-{n}",
        "outcome": "success",
    }
    record["hash"] = record_hash(record)
    return record


def _legacy_checkpoint(database: Database, key: Ed25519PrivateKey, when: datetime) -> None:
    """Sign the records so far as the release before anchoring did (same body, same root)."""
    with database.engine.connect() as connection:  # the schema of 0009: no mac column
        rows = [
            dict(row)
            for row in connection.execute(
                text("SELECT seq, hash, chain_id, chain_seq FROM audit_events ORDER BY seq")
            ).mappings()
        ]
    heads: dict[str, list[Any]] = {}
    for row in rows:
        heads[row["chain_id"]] = [row["chain_seq"], row["hash"]]
    body: dict[str, Any] = {
        "created_at": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "from_seq": 1,
        "to_seq": rows[-1]["seq"],
        "record_count": len(rows),
        "merkle_root": merkle_root_of(rows),
        "chain_heads": json.dumps(heads, sort_keys=True, separators=(",", ":")),
        "previous": GENESIS,
        "key_id": signing.key_id(key.public_key()),
    }
    body["signature"] = base64.b64encode(key.sign(checkpoint_body(body))).decode()
    with database.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO audit_checkpoints (created_at, from_seq, to_seq, record_count,"
                " merkle_root, chain_heads, previous, key_id, signature) VALUES (:created,"
                " :from_seq, :to_seq, :record_count, :merkle_root, :chain_heads, :previous,"
                " :key_id, :signature)"
            ),
            body | {"created": when},
        )


@pytest.fixture
def upgraded(empty_db_url: str, tmp_path: Path) -> Iterator[tuple[Services, FixedClock, int]]:
    """A database at 0009 with two chains of the release before anchoring (one checkpointed,
    one written after the checkpoint), upgraded to head; yields services on it, their clock,
    and the last legacy record's seq."""
    settings = Settings(home=tmp_path / "home", database_url=empty_db_url)
    database = Database(empty_db_url)
    start = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    key = signing.load_or_create(settings.resolved_audit_key_file)
    try:
        migrate.upgrade(database, "0009")
        prev = GENESIS
        table = AuditEvent.__table__
        assert isinstance(table, Table)
        legacy = [c for c in table.columns if c.name != "mac"]
        with database.engine.begin() as connection:
            for n in range(1, 5):
                row = _legacy_record("old-host-1-aaaa", n, prev, start + timedelta(minutes=n), n)
                connection.execute(
                    table.insert().values({c: row[c.name] for c in legacy if c.name in row})
                )
                prev = row["hash"]
        _legacy_checkpoint(database, key, start + timedelta(minutes=5))
        with database.engine.begin() as connection:  # an old server still writing
            first = _legacy_record("old-host-2-bbbb", 1, GENESIS, start + timedelta(minutes=6), 9)
            connection.execute(
                table.insert().values({c: first[c.name] for c in legacy if c.name in first})
            )
        migrate.upgrade(database)
    finally:
        database.dispose()
    clock = FixedClock(start + timedelta(minutes=10))
    services = build_services(settings, clock=clock)
    try:
        yield services, clock, 5
    finally:
        services.close()


def test_chains_from_before_the_upgrade_are_grandfathered(
    upgraded: tuple[Services, FixedClock, int],
) -> None:
    """After the upgrade the old chains verify, the new writer's chain is anchored, and the
    checkpointer signs the old uncheckpointed tail with the new records."""
    services, _, last_legacy = upgraded
    report = _verify(services)
    assert report.ok, report.first
    assert (report.legacy_chains, report.anchored_chains) == (2, 0)
    _write(services)
    made = services.checkpoints.checkpoint()
    assert made is not None
    assert made["from_seq"] == last_legacy
    report = _verify(services)
    assert report.ok, report.first
    assert (report.legacy_chains, report.anchored_chains) == (2, 1)
    assert report.checkpoints == 2


def test_after_the_upgrade_a_new_unanchored_chain_or_a_late_old_record_is_refused(
    upgraded: tuple[Services, FixedClock, int],
) -> None:
    """Once anchoring began, a chain without an opening is a forgery, and an old chain may
    go on only within LEGACY_GRACE (old servers stopping)."""
    services, clock, _ = upgraded
    _write(services)
    services.checkpoints.checkpoint()
    table = AuditEvent.__table__
    assert isinstance(table, Table)
    with services.db.session() as session:
        head = session.execute(
            select(AuditEvent.hash).where(AuditEvent.chain_id == "old-host-2-bbbb")
        ).scalar_one()
    late = _legacy_record("old-host-2-bbbb", 2, head, clock.now(), 10)
    with services.db.engine.begin() as connection:
        connection.execute(table.insert().values(**late))
    assert _verify(services).ok  # within the grace: an old server's last words
    assert services.checkpoints.checkpoint() is not None

    clock.advance(anchor.LEGACY_GRACE + timedelta(minutes=1))
    _write(services)
    services.checkpoints.checkpoint()
    later = _legacy_record("old-host-2-bbbb", 3, late["hash"], clock.now(), 11)
    forged = _legacy_record("new-host-9-ffff", 1, GENESIS, clock.now(), 12)
    with services.db.engine.begin() as connection:
        connection.execute(table.insert().values(**later))
        connection.execute(table.insert().values(**forged))
    report = _verify(services)
    reasons = {p.seq: p.reason for p in report.problems}
    seqs = sorted(r["seq"] for r in record_rows(services.db))[-2:]
    assert "after anchoring began" in reasons[seqs[0]]
    assert "no signed opening" in reasons[seqs[1]]
    with pytest.raises(AuditTamperedError):
        services.checkpoints.checkpoint()


def test_a_forged_record_behind_more_than_one_batch_is_still_refused(services: Services) -> None:
    """The check before signing reads the range in batches: a forgery after the first batch
    of honest records is found; once accepted, the next range is clean again."""
    with services.db.transaction() as session:
        services.audit.record_many(
            session,
            [(SYSTEM_CTX, AuditEntry(action="test.bulk", resource_id=str(n))) for n in range(6000)],
        )
    forged = dict.fromkeys(HASHED_FIELDS) | {
        "chain_id": "intruder",
        "chain_seq": 1,
        "prev_hash": GENESIS,
        "occurred_at": services.clock.now(),
        "action": "user.create",
        "outcome": "success",
    }
    forged["hash"] = record_hash(forged)
    with services.db.engine.begin() as connection:
        connection.execute(insert(AuditEvent).values(**forged))
    with pytest.raises(AuditTamperedError, match="seq 6002"):
        services.checkpoints.checkpoint()
    assert services.checkpoints.checkpoint(accept="incident 7 closed") is not None
    _write(services)
    assert services.checkpoints.checkpoint() is not None
