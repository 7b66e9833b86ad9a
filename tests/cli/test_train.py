"""`medops train` through the CLI on an embedded installation: triggers added, listed,
paused, resumed and evaluated as JSON and tables; a run without a spec is one clear line and
a non-zero exit; a spec file with a mistake names the field."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers.cli_runner import Cli

ADMIN_PW = "tidal-granite-sketch"
USER_PW = "a-long-user-password"


def _engineer(cli: Cli) -> None:
    cli.ok("init", "--json", MEDOPS_ADMIN_PASSWORD=ADMIN_PW, MEDOPS_MFA_REQUIRED_ROLES="")
    cli.ok("login", "-u", "admin", "--password-stdin", stdin=ADMIN_PW)
    cli.ok(
        "users", "create", "eli", "--role", "ml_engineer", "--full-name", "Eli Whitney",
        "--password-stdin", stdin=USER_PW + "\n",
    )  # fmt: skip
    cli.ok("login", "-u", "eli", "--password-stdin", stdin=USER_PW)
    cli.ok("models", "create", "risk")


def test_triggers_through_the_cli(cli: Cli, tmp_path: Path) -> None:
    """A schedule trigger is added, listed, paused (no firing), resumed; events answer JSON."""
    _engineer(cli)
    trigger_file = tmp_path / "trigger.json"
    trigger_file.write_text(json.dumps({"model": "risk", "kind": "schedule", "every_seconds": 600}))
    added = cli.ok("train", "add-trigger", "--file", str(trigger_file), "--json").json()
    assert added["definition"]["kind"] == "schedule"
    table = cli.ok("train", "triggers").out
    assert "every 600 s" in table
    assert "active" in table
    paused = cli.ok("train", "pause", added["id"], "--reason", "maintenance", "--json").json()
    assert paused["paused"] is True
    evaluated = cli.ok("train", "evaluate", "--json").json()
    assert evaluated == {"checked": 0, "events": []}
    assert cli.ok("train", "resume", added["id"], "--json").json()["paused"] is False
    assert cli.ok("train", "events", "--json").json() == []
    assert cli.ok("train", "list", "--json").json() == []


def test_run_errors_are_one_line(cli: Cli, tmp_path: Path) -> None:
    """Without a spec, `train run` fails with one line naming what is missing; a spec file
    giving both an entry point and a command is refused before anything is sent."""
    _engineer(cli)
    failed = cli("train", "run", "risk", "--queue")
    assert failed.code != 0
    assert "no training specification" in failed.err
    assert len(failed.err.strip().splitlines()) == 1
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(
        json.dumps({"entry_point": "m:f", "command": ["train"], "dataset": "d1", "path": "t.csv"})
    )
    refused = cli("train", "configure", "risk", "--file", str(spec_file))
    assert refused.code != 0
    assert "exactly one of entry_point" in refused.err
