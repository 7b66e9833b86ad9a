"""A tampering campaign: random edits, deletions, insertions, reorderings, rewrites and
truncations through raw SQL (triggers dropped first), each caught by verification.

A pristine log (three writers' chains, a signed checkpoint, its exported copy) is built once
per database kind; every trial starts from a fresh copy of it.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import text
from sqlalchemy.engine import Connection

from medops.audit import signing
from medops.audit.chain import GENESIS, HASHED_FIELDS, record_hash
from medops.audit.checkpoints import checkpoint_rows, read_exported, record_rows
from medops.audit.schemas import AuditEntry
from medops.audit.verify import Report, merkle_root_of, verify
from medops.config import Settings
from medops.db.engine import Database
from medops.services import build_services
from tests.helpers.people import SYSTEM_CTX
from tests.helpers.postgres import PgServer

TRIALS = {"sqlite": 1000, "postgresql": 60}
KINDS = (
    "edit",
    "delete",
    "insert",
    "reorder",
    "rewrite",
    "truncate",
    "erase-checkpoints",
    "forge-checkpoint",
)


@dataclass
class Pristine:
    url: str
    exported: Path
    records: int
    public_key: Ed25519PublicKey


@pytest.fixture(scope="module")
def pristine(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pg_server: PgServer | None,
) -> Callable[[str], Pristine]:
    built: dict[str, Pristine] = {}

    def build(kind: str) -> Pristine:
        if kind in built:
            return built[kind]
        folder = tmp_path_factory.mktemp(f"pristine-{kind}")
        if kind == "sqlite":
            url = f"sqlite:///{folder / 'medops.db'}"
            from medops.db import migrate

            database = Database(url)
            migrate.upgrade(database)
            database.dispose()
        else:
            assert pg_server is not None
            url = pg_server.new_database()
        settings = Settings(home=folder, database_url=url, audit_checkpoint_dir=folder / "export")
        writers = [build_services(settings) for _ in range(3)]  # three chains
        rng = random.Random(7)
        for i in range(45):
            writer = writers[rng.randrange(3)]
            with writer.db.transaction() as session:
                writer.audit.record(
                    session,
                    SYSTEM_CTX,
                    AuditEntry(
                        action=rng.choice(["user.create", "auth.login", "token.create"]),
                        resource_type="user",
                        resource_id=f"user-{i}",
                        patient_ref=f"pseudo-{rng.randrange(1000)}" if i % 3 == 0 else None,
                        details={"i": i},
                    ),
                )
        assert writers[0].checkpoints.checkpoint() is not None
        for writer in writers:
            writer.close()
        key = signing.load_or_create(settings.resolved_audit_key_file).public_key()
        # 45 records + the checkpoint's own
        built[kind] = Pristine(url, folder / "export", 46, key)
        return built[kind]

    return build


def _copy(kind: str, source: Pristine, tmp_path: Path, pg_server: PgServer | None, n: int) -> str:
    if kind == "sqlite":
        target = tmp_path / f"trial-{n}.db"
        shutil.copyfile(source.url.removeprefix("sqlite:///"), target)
        return f"sqlite:///{target}"
    assert pg_server is not None
    name = source.url.rsplit("/", 1)[1]
    copy = f"{pg_server.prefix}_{n:05d}"
    pg_server.execute(f"CREATE DATABASE {copy} TEMPLATE {name}")
    pg_server.created.append(copy)
    return source.url.rsplit("/", 1)[0] + "/" + copy


def _drop_triggers(conn: Connection, kind: str) -> None:
    if kind == "sqlite":
        for table in ("audit_events", "audit_checkpoints"):
            for verb in ("update", "delete", "replace"):
                conn.execute(text(f"DROP TRIGGER {table}_no_{verb}"))
    else:
        for table in ("audit_events", "audit_checkpoints"):
            conn.execute(text(f"DROP TRIGGER {table}_append_only ON {table}"))


def _rows(conn: Connection) -> list[dict[str, Any]]:
    return [
        dict(r) for r in conn.execute(text("SELECT * FROM audit_events ORDER BY seq")).mappings()
    ]


def _tamper(  # noqa: PLR0911 - one branch per kind of tampering reads best here
    conn: Connection, kind: str, rng: random.Random, covered: int
) -> int | None:
    """Apply one tampering of ``kind``; return the seq verification must name, if exact."""
    rows = _rows(conn)[:covered]
    victim = rng.choice(rows)
    if kind == "edit":
        column = rng.choice(["action", "actor_name", "outcome", "resource_id", "details", "reason"])
        conn.execute(
            text(f"UPDATE audit_events SET {column} = :v WHERE seq = :s"),
            {"v": f"x{rng.randrange(10**6)}", "s": victim["seq"]},
        )
        return int(victim["seq"])
    if kind == "delete":
        conn.execute(text("DELETE FROM audit_events WHERE seq = :s"), {"s": victim["seq"]})
        after = [
            r["seq"]
            for r in _rows(conn)
            if r["chain_id"] == victim["chain_id"] and r["chain_seq"] > victim["chain_seq"]
        ]
        return min(after) if after else None  # the next record of the chain is named
    if kind == "insert":
        forged = dict(victim) | {"action": "user.delete", "resource_id": "evidence"}
        conn.execute(
            text(
                "UPDATE audit_events SET chain_seq = chain_seq + 100000"
                " WHERE chain_id = :c AND chain_seq >= :k"
            ),
            {"c": victim["chain_id"], "k": victim["chain_seq"]},
        )
        conn.execute(
            text(
                "UPDATE audit_events SET chain_seq = chain_seq - 100000 + 1"
                " WHERE chain_id = :c AND chain_seq > 100000"
            ),
            {"c": victim["chain_id"]},
        )
        forged["hash"] = record_hash(forged)
        forged.pop("seq")
        columns = ", ".join(forged)
        conn.execute(
            text(
                f"INSERT INTO audit_events ({columns})"
                f" VALUES ({', '.join(':' + c for c in forged)})"
            ),
            forged,
        )
        return None
    if kind == "reorder":
        other = rng.choice([r for r in rows if r["seq"] != victim["seq"]])
        conn.execute(text("UPDATE audit_events SET seq = -1 WHERE seq = :a"), {"a": victim["seq"]})
        conn.execute(
            text("UPDATE audit_events SET seq = :a WHERE seq = :b"),
            {"a": victim["seq"], "b": other["seq"]},
        )
        conn.execute(text("UPDATE audit_events SET seq = :b WHERE seq = -1"), {"b": other["seq"]})
        return None
    if kind == "rewrite":
        # A strong attacker edits a record and recomputes the rest of its chain.
        chain = sorted(
            (r for r in _rows(conn) if r["chain_id"] == victim["chain_id"]),
            key=lambda r: r["chain_seq"],
        )
        prev = None
        for row in chain:
            if row["chain_seq"] < victim["chain_seq"]:
                prev = row["hash"]
                continue
            if row["seq"] == victim["seq"]:
                row["outcome"] = "failure" if row["outcome"] == "success" else "success"
            if prev is not None:
                row["prev_hash"] = prev
            row["hash"] = record_hash({f: row[f] for f in HASHED_FIELDS})
            conn.execute(
                text(
                    "UPDATE audit_events SET outcome = :o, prev_hash = :p, hash = :h WHERE seq = :s"
                ),
                {"o": row["outcome"], "p": row["prev_hash"], "h": row["hash"], "s": row["seq"]},
            )
            prev = row["hash"]
        return None
    if kind == "truncate":
        cut = rng.randrange(covered - 5, covered) + 1
        conn.execute(text("DELETE FROM audit_events WHERE seq >= :c"), {"c": cut})
        return None
    if kind == "erase-checkpoints":
        # Remove the checkpoints from the database, then the tail they signed.
        conn.execute(text("DELETE FROM audit_checkpoints"))
        conn.execute(text("DELETE FROM audit_events WHERE seq >= :c"), {"c": covered - 2})
        return None
    _forge_checkpoint(conn, victim)
    return None


def _forge_checkpoint(conn: Connection, victim: dict[str, Any]) -> None:
    """Delete a record, re-chain the rest of its chain, and rewrite the checkpoint's root,
    count and heads to match: everything but the signature, which needs the key."""
    conn.execute(text("DELETE FROM audit_events WHERE seq = :s"), {"s": victim["seq"]})
    chain = sorted(
        (r for r in _rows(conn) if r["chain_id"] == victim["chain_id"]),
        key=lambda r: r["chain_seq"],
    )
    prev = GENESIS
    for position, row in enumerate(chain, 1):
        row["chain_seq"], row["prev_hash"] = position, prev
        row["hash"] = record_hash({f: row[f] for f in HASHED_FIELDS})
        conn.execute(
            text(
                "UPDATE audit_events SET chain_seq = :c, prev_hash = :p, hash = :h WHERE seq = :s"
            ),
            {"c": -row["seq"], "p": row["prev_hash"], "h": row["hash"], "s": row["seq"]},
        )
        prev = row["hash"]
    for row in chain:
        conn.execute(
            text("UPDATE audit_events SET chain_seq = :c WHERE seq = :s"),
            {"c": row["chain_seq"], "s": row["seq"]},
        )
    checkpoint = dict(conn.execute(text("SELECT * FROM audit_checkpoints")).mappings().one())
    covered = [r for r in _rows(conn) if checkpoint["from_seq"] <= r["seq"] <= checkpoint["to_seq"]]
    heads = json.loads(checkpoint["chain_heads"])
    if chain:
        heads[victim["chain_id"]] = [chain[-1]["chain_seq"], chain[-1]["hash"]]
    else:
        heads.pop(victim["chain_id"], None)
    conn.execute(
        text("UPDATE audit_checkpoints SET merkle_root = :m, record_count = :n, chain_heads = :h"),
        {
            "m": merkle_root_of(covered),
            "n": len(covered),
            "h": json.dumps(heads, sort_keys=True, separators=(",", ":")),
        },
    )


def _verify(url: str, exported: Path, key: Ed25519PublicKey) -> Report:
    database = Database(url)
    try:
        return verify(
            record_rows(database),
            checkpoint_rows(database),
            exported=read_exported(exported),
            public_key=key,
        )
    finally:
        database.dispose()


def test_campaign(
    backend: str, pristine: Callable[[str], Pristine], tmp_path: Path, pg_server: PgServer | None
) -> None:
    """Every trial is caught; edits are pinned to the edited record's sequence number."""
    source = pristine(backend)
    assert _verify(source.url, source.exported, source.public_key).ok
    rng = random.Random(2026)
    caught: dict[str, int] = dict.fromkeys(KINDS, 0)
    for n in range(TRIALS[backend]):
        kind = KINDS[n % len(KINDS)]
        url = _copy(backend, source, tmp_path, pg_server, n)
        database = Database(url)
        try:
            with database.engine.begin() as conn:
                _drop_triggers(conn, backend)
                expected = _tamper(conn, kind, rng, covered=45)
        finally:
            database.dispose()
        report = _verify(url, source.exported, source.public_key)
        assert not report.ok, (n, kind)
        assert report.first is not None
        if expected is not None:
            assert report.first.seq == expected, (n, kind, report.first)
        caught[kind] += 1
        if backend == "sqlite":
            Path(url.removeprefix("sqlite:///")).unlink()
        else:
            pg_server.execute(f"DROP DATABASE {url.rsplit('/', 1)[1]}")  # type: ignore[union-attr]
            pg_server.created.remove(url.rsplit("/", 1)[1])  # type: ignore[union-attr]
    assert sum(caught.values()) == TRIALS[backend]
    assert min(caught.values()) >= TRIALS[backend] // len(KINDS)
