"""A consistent copy of the database while the server writes to it, and putting it back.

* SQLite: the online backup API (``sqlite3.Connection.backup`` in one step: one read
  transaction, which in WAL mode never holds writers back) into a file.
* PostgreSQL: a REPEATABLE READ transaction exports its snapshot; ``pg_dump --format=custom
  --snapshot`` dumps exactly that snapshot, and the schema revision, the audit chains' heads and
  the latest checkpoint are read in the same transaction, so the manifest describes the dump.
  ``pg_dump`` must be at least the server's major version: it is looked for in
  MEDOPS_BACKUP_PG_BIN_DIR, then PostgreSQL's folder for the server's major version, then the
  PATH, and a mismatch is one clear error.

Restoring needs an empty database: SQLite, no file (or an empty one); PostgreSQL, no table.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess  # nosec B404 - runs pg_dump/pg_restore with argument lists, never a shell
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import Session

from medops.audit.tables import AuditCheckpoint, AuditEvent, checkpoint_fields
from medops.audit.verify import checkpoint_digest
from medops.backup.schemas import AuditState, CheckpointRef
from medops.config import Settings
from medops.core.canonical import utc_text
from medops.errors import ConfigurationError, ConflictError, IntegrityError

PG_TIMEOUT = 3600.0


@dataclass(frozen=True)
class Dump:
    path: Path
    dialect: str
    format: str
    schema_revision: str | None
    audit: AuditState
    server_version: str | None = None
    tool_version: str | None = None


def dialect_of(url: str) -> str:
    return "postgresql" if make_url(url).drivername.startswith("postgres") else "sqlite"


def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise ConfigurationError("an in-memory SQLite database cannot be backed up or restored")
    return Path(database)


def read_state(session: Session) -> tuple[str | None, AuditState]:
    """The schema revision and the audit log's state as ``session`` sees them."""
    revision = None
    if inspect(session.connection()).has_table("alembic_version"):
        revision = session.scalar(text("SELECT version_num FROM alembic_version"))
    if not inspect(session.connection()).has_table("audit_events"):
        return revision, AuditState(records=0, last_seq=0, chain_heads={}, latest_checkpoint=None)
    records = session.scalar(select(func.count()).select_from(AuditEvent)) or 0
    last_seq = session.scalar(select(func.max(AuditEvent.seq))) or 0
    latest = (
        select(AuditEvent.chain_id, func.max(AuditEvent.chain_seq).label("top"))
        .group_by(AuditEvent.chain_id)
        .subquery()
    )
    heads = {
        str(chain): (int(seq), str(digest))
        for chain, seq, digest in session.execute(
            select(AuditEvent.chain_id, AuditEvent.chain_seq, AuditEvent.hash).join(
                latest,
                (AuditEvent.chain_id == latest.c.chain_id) & (AuditEvent.chain_seq == latest.c.top),
            )
        ).all()
    }
    row = session.scalars(
        select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1)
    ).first()
    checkpoint = None
    if row is not None:
        fields = checkpoint_fields(row)
        checkpoint = CheckpointRef(
            to_seq=row.to_seq,
            created_at=utc_text(row.created_at),
            digest=checkpoint_digest(fields),
        )
    state = AuditState(
        records=int(records),
        last_seq=int(last_seq),
        chain_heads=heads,
        latest_checkpoint=checkpoint,
    )
    return (str(revision) if revision else None), state


def state_of(url: str) -> tuple[str | None, AuditState]:
    """The schema revision and audit state of the database at ``url`` (a plain engine: no
    pragmas, no pool kept)."""
    engine = create_engine(_plain_url(url))
    try:
        with engine.connect() as connection, Session(bind=connection) as session:
            return read_state(session)
    finally:
        engine.dispose()


def _plain_url(url: str) -> str:
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


# -- SQLite --------------------------------------------------------------------------------


def dump_sqlite(url: str, into: Path) -> Dump:
    source = sqlite_path(url)
    if not source.is_file():
        raise ConfigurationError(f"no database at {source}: nothing to back up (medops init?)")
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(into)
    try:
        src.execute("PRAGMA busy_timeout=30000")
        src.backup(dst)  # one step: one read transaction, one snapshot
        dst.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
    finally:
        dst.close()
        src.close()
    revision, state = state_of(f"sqlite:///{into}")
    return Dump(into, "sqlite", "sqlite", revision, state, server_version=sqlite3.sqlite_version)


def check_sqlite_dump(path: Path) -> None:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        result = connection.execute("PRAGMA quick_check").fetchone()
    except sqlite3.DatabaseError as exc:
        raise IntegrityError(f"the database dump is not a SQLite database: {exc}") from None
    finally:
        connection.close()
    if not result or result[0] != "ok":
        raise IntegrityError(f"the database dump fails SQLite's check: {result}")


def sqlite_is_empty(url: str) -> bool:
    path = sqlite_path(url)
    if not path.exists() or path.stat().st_size == 0:
        return True
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = connection.execute(
            "SELECT count(*) FROM sqlite_master WHERE type='table'"
        ).fetchone()
    finally:
        connection.close()
    return not tables or tables[0] == 0


def restore_sqlite(dump: Path, url: str) -> None:
    target = sqlite_path(url)
    if not sqlite_is_empty(url):
        raise ConflictError(f"{target} already holds a database: restore onto an empty one")
    target.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{dump}?mode=ro", uri=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=WAL")
    finally:
        dst.close()
        src.close()


# -- PostgreSQL ----------------------------------------------------------------------------


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """The URL as libpq takes it (no password) and the environment that carries the password."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _major(version: str) -> int:
    match = re.search(r"(\d+)(?:\.(\d+))?", version)
    if match is None:
        raise ConfigurationError(f"cannot read a PostgreSQL version from {version!r}")
    return int(match.group(1))


def find_tool(settings: Settings, name: str, server_major: int) -> Path:
    """``pg_dump`` or ``pg_restore`` for a server of ``server_major``."""
    candidates: list[Path] = []
    if settings.backup_pg_bin_dir is not None:
        candidates.append(settings.backup_pg_bin_dir / name)
    else:
        candidates.append(Path(f"/usr/lib/postgresql/{server_major}/bin/{name}"))
        found = shutil.which(name)
        if found:
            candidates.append(Path(found))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    where = settings.backup_pg_bin_dir or "the PATH"
    msg = (
        f"{name} not found in {where}: install PostgreSQL {server_major}'s client tools "
        "or set MEDOPS_BACKUP_PG_BIN_DIR to their folder"
    )
    raise ConfigurationError(msg)


def _tool_version_text(tool: Path) -> str:
    answer = subprocess.run(  # noqa: S603  # nosec B603 - the tool's path, no shell
        [str(tool), "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    match = re.search(r"\d+(?:\.\d+)+|\d+", answer.stdout)
    if answer.returncode != 0 or match is None:
        raise ConfigurationError(f"{tool} --version gave no version: {answer.stderr.strip()}")
    return match.group(0)


def checked_tool(settings: Settings, name: str, server_version: str) -> tuple[Path, str]:
    """The tool and its version, refused when older than the server."""
    server_major = _major(server_version)
    tool = find_tool(settings, name, server_major)
    version = _tool_version_text(tool)
    if _major(version) < server_major:
        msg = (
            f"{name} {version} ({tool}) is older than the PostgreSQL server {server_version}: "
            f"install PostgreSQL {server_major}'s client tools or set MEDOPS_BACKUP_PG_BIN_DIR"
        )
        raise ConfigurationError(msg)
    return tool, version


@contextmanager
def _snapshot(url: str) -> Iterator[tuple[Connection, str, str]]:
    """A REPEATABLE READ, READ ONLY transaction, its exported snapshot id and the server's
    version; the snapshot lives as long as the block."""
    engine = create_engine(_plain_url(url))
    try:
        with engine.connect() as plain:
            connection = plain.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():
                connection.execute(text("SET TRANSACTION READ ONLY"))
                snapshot = connection.execute(text("SELECT pg_export_snapshot()")).scalar_one()
                version = connection.execute(text("SHOW server_version")).scalar_one()
                yield connection, str(snapshot), str(version).split(" ")[0]
    finally:
        engine.dispose()


def dump_postgres(settings: Settings, url: str, into: Path) -> Dump:
    with _snapshot(url) as (connection, snapshot, server_version):
        tool, version = checked_tool(settings, "pg_dump", server_version)
        with Session(bind=connection) as session:
            revision, state = read_state(session)
        conninfo, env = _libpq(url)
        answer = subprocess.run(  # noqa: S603 - our arguments, the URL given as one argument  # nosec B603
            [
                str(tool),
                "--format=custom",
                f"--snapshot={snapshot}",
                "--no-password",
                f"--file={into}",
                f"--dbname={conninfo}",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=PG_TIMEOUT,
            check=False,
        )
    if answer.returncode != 0:
        raise ConfigurationError(f"pg_dump failed: {_first_line(answer.stderr)}")
    return Dump(into, "postgresql", "pg_dump-custom", revision, state, server_version, version)


def postgres_is_empty(url: str) -> bool:
    engine = create_engine(_plain_url(url))
    try:
        with engine.connect() as connection:
            count = connection.execute(
                text(
                    "SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
                    "ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') "
                    "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
                    "AND n.nspname NOT LIKE 'pg_toast%'"
                )
            ).scalar_one()
    finally:
        engine.dispose()
    return int(count) == 0


def server_version(url: str) -> str:
    engine = create_engine(_plain_url(url))
    try:
        with engine.connect() as connection:
            return str(connection.execute(text("SHOW server_version")).scalar_one()).split(" ")[0]
    finally:
        engine.dispose()


def check_postgres_dump(settings: Settings, dump: Path, server: str) -> None:
    """``pg_restore --list`` reads the whole table of contents of the dump."""
    tool, _version = checked_tool(settings, "pg_restore", server)
    answer = subprocess.run(  # noqa: S603  # nosec B603 - pg_restore --list of our dump, no shell
        [str(tool), "--list", str(dump)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if answer.returncode != 0:
        raise IntegrityError(f"pg_restore cannot read the dump: {_first_line(answer.stderr)}")


def restore_postgres(settings: Settings, dump: Path, url: str) -> None:
    if not postgres_is_empty(url):
        name = make_url(url).database
        raise ConflictError(
            f"database {name} already holds tables: restore onto an empty database "
            "(createdb a new one and point MEDOPS_DATABASE_URL at it)"
        )
    tool, _version = checked_tool(settings, "pg_restore", server_version(url))
    conninfo, env = _libpq(url)
    answer = subprocess.run(  # noqa: S603  # nosec B603 - pg_restore of our dump, no shell
        [
            str(tool),
            "--exit-on-error",
            "--single-transaction",
            "--no-owner",
            "--no-acl",
            "--no-password",
            f"--dbname={conninfo}",
            str(dump),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=PG_TIMEOUT,
        check=False,
    )
    if answer.returncode != 0:
        raise ConfigurationError(f"pg_restore failed: {_first_line(answer.stderr)}")


def _first_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[0][:300] if lines else "(no message)"
