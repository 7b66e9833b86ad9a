"""``medops alerts dispatch`` and ``medops alerts notifications`` (the functions the alerts
group registers) through the SDK's embedded client, with --json."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from medops.cli.alerts_dispatch import dispatch, notifications
from medops.core.permissions import Role
from medops.services import Services
from medops.testing import FixedClock
from tests.helpers.cli import assert_one_line_error, init_with_people, log_in
from tests.helpers.cli_runner import Cli, clean_env
from tests.helpers.notify_outbox import queue


@pytest.fixture
def clock() -> FixedClock:
    """The embedded client checks tokens with the wall clock: issue them at today's time."""
    return FixedClock(datetime.now(UTC))


def run_cli(command: str, args: list[str], env: dict[str, str]) -> Result:
    """The function under a Typer app, as the alerts group registers it."""
    app = typer.Typer()
    app.command("dispatch")(dispatch)
    app.command("notifications")(notifications)
    return CliRunner().invoke(app, [command, *args], env=env)


def test_the_cli_dispatches_and_lists_with_json(
    services: Services, clock: FixedClock, tokens: dict[Role, str], db_url: str
) -> None:
    """dispatch --json prints the run's summary; notifications --json the outbox rows; a bad
    --status is refused with a non-zero exit."""
    queue(services.db, clock.now(), 1, receiver="nowhere")
    env = {"MEDOPS_HOME": str(services.settings.home), "MEDOPS_DATABASE_URL": db_url,
           "MEDOPS_TOKEN": tokens[Role.ML_ENGINEER], "MEDOPS_URL": "",
           "MEDOPS_MFA_REQUIRED_ROLES": ""}  # fmt: skip
    ran = run_cli("dispatch", ["--json"], env)
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.output)["failed"] == 1
    listed = run_cli("notifications", ["--json", "--receiver", "nowhere"], env)
    assert listed.exit_code == 0, listed.output
    assert [r["attempts"] for r in json.loads(listed.output)] == [1]
    bad = run_cli("notifications", ["--status", "lost"], env)
    assert bad.exit_code != 0


def test_medops_alerts_dispatch_and_notifications_through_the_real_cli(
    tmp_path: Path, empty_db_url: str
) -> None:
    """The installed command tree: an ML engineer dispatches (nothing due) and reads the
    empty outbox as JSON; a bad --status and a clinician's dispatch (no alerts:run) each fail
    on one line."""
    cli = Cli(clean_env(MEDOPS_HOME=str(tmp_path / "home"), MEDOPS_DATABASE_URL=empty_db_url))
    init_with_people(cli, [("eli", "ml_engineer", "Eli"), ("cora", "clinician", "Cora")])
    log_in(cli, "eli")
    ran = cli.ok("alerts", "dispatch", "--json").json()
    assert ran == {"claimed": 0, "sent": 0, "failed": 0, "dead": 0, "skipped": 0}
    assert cli.ok("alerts", "notifications", "--json").json() == []
    assert "Alert dispatch" in cli.ok("alerts", "dispatch").out
    assert_one_line_error(cli("alerts", "notifications", "--status", "lost"), "status")
    log_in(cli, "cora")
    assert_one_line_error(cli("alerts", "dispatch"), "alerts:run")
