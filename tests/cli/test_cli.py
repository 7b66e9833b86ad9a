"""The medops CLI end to end: init, login, users, tokens, db, and how it reports errors."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlalchemy import text

from medops.db.engine import Database
from tests.helpers.cli import (
    ADMIN_PW,
    assert_one_line_error,
    init_admin,
    login_as,
)
from tests.helpers.cli_runner import Cli, clean_env


def test_admin_workflow_from_init_to_logout(cli: Cli, tmp_path: Path) -> None:
    """init, login, whoami, users create/list/disable, tokens create/list/revoke, logout."""
    init = init_admin(cli).json()
    assert init["admin"]["username"] == "admin"
    assert init["generated_password"] is None
    login_as(cli)
    credentials = tmp_path / "home" / "credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600

    me = cli.ok("whoami", "--json").json()
    assert (me["username"], me["role"]) == ("admin", "admin")
    created = cli.ok(
        "users",
        "create",
        "nurse-joy",
        "--role",
        "clinician",
        "--password-stdin",
        "--json",
        stdin="nurse-password-123\n",
    ).json()
    assert created["role"] == "clinician"
    listed = cli.ok("users", "list", "--json").json()
    assert {u["username"] for u in listed} == {"admin", "nurse-joy"}
    human = cli.ok("users", "list")
    assert "nurse-joy" in human.out
    assert "clinician" in human.out

    token = cli.ok("tokens", "create", "--name", "etl", "--expires", "7d", "--json").json()
    assert token["token"].startswith("mdo_")
    ids = {t["id"] for t in cli.ok("tokens", "list", "--json").json()}
    assert token["id"] in ids
    as_token = cli.ok("whoami", "--json", MEDOPS_TOKEN=token["token"]).json()
    assert as_token["auth_method"] == "token"
    revoked = cli.ok("tokens", "revoke", token["id"], "--json").json()
    assert revoked["revoked_at"] is not None
    assert_one_line_error(cli("whoami", MEDOPS_TOKEN=token["token"]), "revoked")

    disabled = cli.ok("users", "disable", "nurse-joy", "--json").json()
    assert disabled["active"] is False
    cli.ok("logout")
    assert_one_line_error(cli("whoami"), "authentication required")


def test_init_without_a_password_generates_one_and_shows_it_once(cli: Cli) -> None:
    """The generated password works for login; a second init refuses in one line."""
    init = cli.ok("init", "--admin", "chief", "--json").json()
    generated = init["generated_password"]
    assert len(generated) >= 20
    login_as(cli, "chief", generated)
    assert cli.ok("whoami", "--json").json()["username"] == "chief"
    assert_one_line_error(cli("init"), "already")


def test_clinician_cannot_create_users(cli: Cli) -> None:
    """Permission checks apply to the CLI exactly as to the API (403 becomes one line)."""
    init_admin(cli)
    login_as(cli)
    cli.ok(
        "users",
        "create",
        "doc",
        "--role",
        "clinician",
        "--password-stdin",
        stdin="silver-meadow-88\n",
    )
    login_as(cli, "doc", "silver-meadow-88")
    result = cli(
        "users", "create", "intruder", "--role", "admin", "--password-stdin", stdin="x" * 20 + "\n"
    )
    assert_one_line_error(result, "lacks permission 'users:manage'")


def test_db_status_and_upgrade_on_an_empty_database(cli: Cli) -> None:
    """status reports no revision; upgrade migrates to head; status then says up to date."""
    before = cli.ok("db", "status", "--json").json()
    assert before["current"] is None
    assert before["up_to_date"] is False
    upgraded = cli.ok("db", "upgrade", "--json").json()
    assert upgraded["before"] is None
    assert upgraded["after"] == before["head"]
    assert cli.ok("db", "status", "--json").json()["up_to_date"] is True


@pytest.mark.parametrize(
    ("args", "stdin", "env", "fragments"),
    [
        (("whoami",), "", {}, ("run 'medops init'",)),
        (("whoami",), "", {"MEDOPS_URL": "medops.example"}, ("invalid setting MEDOPS_URL",)),
        (("whoami",), "", {"MEDOPS_URL": "http://127.0.0.1:9"}, ("cannot reach",)),
        (
            ("users", "create", "x", "--role", "clinician", "--password-stdin"),
            "",
            {},
            ("--password-stdin",),
        ),
        (("tokens", "create", "--expires", "someday"), "", {}, ("--expires 'someday'",)),
        (("tokens", "create", "--expires", "99999999999d"), "", {}, ("too far in the future",)),
        (("init", "--admin", "Bad Name"), "", {}, ("admin name 'Bad Name' must be",)),
        (("init",), "", {"MEDOPS_ADMIN_PASSWORD": "short"}, ("MEDOPS_ADMIN_PASSWORD must be",)),
        (("whoami",), "", {"MEDOPS_DATABASE_URL": "sqlitex:///x"}, ("MEDOPS_DATABASE_URL",)),
        (("login", "--password-stdin"), "pw\n", {}, ("--username is required",)),
    ],
)
def test_errors_are_one_line_on_stderr_with_non_zero_exit(
    tmp_path: Path,
    args: tuple[str, ...],
    stdin: str,
    env: dict[str, str],
    fragments: tuple[str, ...],
) -> None:
    """No traceback, nothing on stdout, one line naming the problem."""
    cli = Cli(clean_env(MEDOPS_HOME=str(tmp_path / "nowhere"), **env))
    assert_one_line_error(cli(*args, stdin=stdin), *fragments)
    assert not (tmp_path / "nowhere").exists(), "a refused command left files behind"


def test_bad_input_after_login_names_the_field(cli: Cli) -> None:
    """A policy violation comes back from the server as one line naming the field's rule."""
    init_admin(cli)
    login_as(cli)
    result = cli(
        "users", "create", "shorty", "--role", "auditor", "--password-stdin", stdin="short\n"
    )
    assert_one_line_error(result, "password must be at least 12 characters")
    bad_login = cli("login", "--username", "admin", "--password-stdin", stdin="wrong-password\n")
    assert_one_line_error(bad_login, "invalid username or password")


def test_version_and_help(tmp_path: Path) -> None:
    """--version prints the version; --help lists the command groups."""
    cli = Cli(clean_env(MEDOPS_HOME=str(tmp_path)))
    assert cli.ok("--version").out.startswith("medops ")
    help_text = cli.ok("--help").out
    for name in ("init", "server", "login", "whoami", "users", "tokens", "db"):
        assert name in help_text


def test_the_installed_console_script_reports_errors_in_one_line(tmp_path: Path) -> None:
    """The real `medops` executable: exit 1, one stderr line, no traceback, nothing on stdout."""
    cli = Cli(clean_env(MEDOPS_HOME=str(tmp_path / "nowhere")))
    assert cli.subprocess("--version").out.startswith("medops ")
    assert_one_line_error(cli.subprocess("whoami"), "run 'medops init'")
    assert_one_line_error(cli.subprocess("whoami", MEDOPS_LOG_LEVEL="loud"), "MEDOPS_LOG_LEVEL")
    usage = cli.subprocess("users", "create", "x", "--role", "surgeon")
    assert usage.code == 2
    assert_one_line_error(usage, "Invalid value for '--role'", "see 'medops users create --help'")


def test_the_installed_console_script_runs_init_andlogin_as(cli: Cli) -> None:
    """init and login through the executable, password on stdin."""
    init = cli.subprocess("init", "--json", MEDOPS_ADMIN_PASSWORD=ADMIN_PW)
    assert init.code == 0, init.err
    login = cli.subprocess("login", "-u", "admin", "--password-stdin", stdin=ADMIN_PW + "\n")
    assert login.code == 0, login.err
    assert "logged in as admin" in login.out


def test_audit_checkpoint_and_verify_offline(cli: Cli, tmp_path: Path) -> None:
    """verify passes on an honest log and fails in one line naming the record after an edit."""
    init_admin(cli)
    login_as(cli)
    export = str(tmp_path / "export")
    made = cli.ok("audit", "checkpoint", "--json", MEDOPS_AUDIT_CHECKPOINT_DIR=export).json()
    assert made["from_seq"] == 1
    assert (tmp_path / "export").is_dir()
    report = cli.ok("audit", "verify", "--checkpoints", export, "--json").json()
    assert report["ok"] is True
    assert report["checkpoints"] == 1
    url = cli.env["MEDOPS_DATABASE_URL"]
    database = Database(url)
    try:
        with database.engine.begin() as conn:
            if database.dialect == "sqlite":
                conn.execute(text("DROP TRIGGER audit_events_no_update"))
            else:
                conn.execute(text("DROP TRIGGER audit_events_append_only ON audit_events"))
            conn.execute(text("UPDATE audit_events SET outcome = 'failure' WHERE seq = 2"))
    finally:
        database.dispose()
    assert_one_line_error(
        cli("audit", "verify", "--checkpoints", export), "seq 2", "content does not match"
    )


def test_verify_refuses_to_trust_checkpoints_without_a_key(cli: Cli, tmp_path: Path) -> None:
    """A copy of the database alone (no key, no exports) does not pass as verified."""
    init_admin(cli)
    cli.ok("audit", "checkpoint")
    (tmp_path / "home" / "audit-signing.key").rename(tmp_path / "elsewhere.key")
    assert_one_line_error(cli("audit", "verify"), "without the public key")
    cli.env["MEDOPS_AUDIT_KEY_FILE"] = str(tmp_path / "elsewhere.key")
    public = cli.ok("audit", "public-key").out
    (tmp_path / "auditor.pem").write_text(public)
    del cli.env["MEDOPS_AUDIT_KEY_FILE"]
    assert cli.ok(
        "audit", "verify", "--public-key", str(tmp_path / "auditor.pem"), "--json"
    ).json()["ok"]
