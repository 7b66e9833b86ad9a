"""`medops backup`: JSON for programs (what the dr drill reads), and bad input answered
with one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from medops.audit.tables import AuditEvent
from medops.config import Settings
from medops.db.engine import Database
from tests.helpers.cli_runner import Cli, clean_env
from tests.helpers.postgres import PgServer


@pytest.fixture
def cli(small: Settings) -> Cli:
    return Cli(clean_env(MEDOPS_HOME=str(small.home), MEDOPS_DATABASE_URL=str(small.database_url)))


def test_create_list_verify_restore_as_json(cli: Cli, repo: Path, tmp_path: Path) -> None:
    created = cli.ok("backup", "create", "--to", str(repo), "--json").json()
    assert created["ok"] is True
    listed = cli.ok("backup", "list", "--target", str(repo), "--json").json()
    assert [b["id"] for b in listed["backups"]] == [created["id"]]
    assert listed["rule"]["met"] is False
    verified = cli.ok("backup", "verify", created["id"], "--from", str(repo), "--json").json()
    assert verified["ok"] is True
    new_home = tmp_path / "new"
    new_home.mkdir()
    key = (tmp_path / "home" / "backup.key").read_text()
    restored = cli.ok(
        "backup", "restore", created["id"], "--from", str(repo), "--json",
        MEDOPS_HOME=str(new_home), MEDOPS_DATABASE_URL="", MEDOPS_BACKUP_KEY=key.strip(),
    ).json()  # fmt: skip
    assert restored["chain_heads_match"] is True
    assert restored["checkpoint_matches"] is True
    assert (new_home / "medops.db").is_file()
    pruned = cli.ok("backup", "prune", "--target", str(repo), "--json").json()
    assert pruned[0]["removed"] == []


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (("backup", "create"), {}, "no backup target: set MEDOPS_BACKUP_TARGETS"),
        (("backup", "create", "--to", "ftp://host/x"), {}, "unsupported backup target"),
        (("backup", "verify", "latest", "--from", "REPO"), {}, "not a backup id"),
        (("backup", "verify", "20260101T000000Z-abcdef", "--from", "REPO"), {}, "is not in"),
        (("backup", "restore", "ID", "--from", "REPO"), {}, "already holds a database"),
        (("backup", "list"), {"MEDOPS_BACKUP_KEEP_DAILY": "-1"}, "MEDOPS_BACKUP_KEEP_DAILY"),
        (("backup", "restore", "ID", "--from", "REPO"), {"MEDOPS_BACKUP_KEY": "short"},
         "MEDOPS_BACKUP_KEY"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line(
    cli: Cli, repo: Path, args: tuple[str, ...], env: dict[str, str], says: str
) -> None:
    backup_id = cli.ok("backup", "create", "--to", str(repo), "--json").json()["id"]
    argv = [str(repo) if a == "REPO" else backup_id if a == "ID" else a for a in args]
    result = cli(*argv, **env)
    assert result.code != 0
    assert says in result.err
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert "Traceback" not in result.err
    assert json.dumps(result.out)  # nothing half-printed that breaks a reader


def test_a_backup_without_pg_dump_is_one_line_and_audited_postgresql(
    pg_server: PgServer | None, tmp_path: Path, repo: Path
) -> None:
    """PostgreSQL without a usable pg_dump: one line saying what to install, and the failed
    attempt is in the audit log."""
    if pg_server is None:
        pytest.skip("PostgreSQL case: set MEDOPS_TEST_POSTGRES_URL to run it")
    url = pg_server.new_database()
    cli = Cli(clean_env(MEDOPS_HOME=str(tmp_path / "home"), MEDOPS_DATABASE_URL=url))
    result = cli("backup", "create", "--to", str(repo), MEDOPS_BACKUP_PG_BIN_DIR=str(tmp_path))
    assert result.code == 1
    assert "pg_dump not found" in result.err
    assert "client tools" in result.err
    assert len(result.err.strip().splitlines()) == 1
    database = Database(url)
    try:
        with database.session() as session:
            outcomes = list(
                session.scalars(
                    select(AuditEvent.outcome).where(AuditEvent.action == "backup.create")
                )
            )
    finally:
        database.dispose()
    assert outcomes == ["failure"]
