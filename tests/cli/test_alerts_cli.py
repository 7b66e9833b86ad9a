"""`medops alerts` end to end through the CLI over the embedded app, on both backends: rule
sets from YAML, the routing configuration from JSON, an evaluation raising a real alert over
the served deployment, ack, show, resolve, silences, and bad input on one line."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers.cli import DEPLOYMENT, assert_one_line_error, serving
from tests.helpers.cli_runner import Cli

RULES = """\
rules:
  - name: CanaryRolledBack
    signal: canary_rolled_back
    op: ">="
    threshold: 0
    severity: warning
    team: ops
"""


def test_rules_config_evaluate_ack_resolve_and_silences_from_the_cli(
    cli: Cli, tmp_path: Path
) -> None:
    """The engineer shows the defaults, sets a rule for the deployment (YAML) that holds at
    once, sets the routing (JSON), evaluates, and answers the alert; every command's --json
    parses; a bad rule file, an undefined receiver and an unknown alert fail on one line."""
    serving(cli, tmp_path)  # signed in as the engineer eli
    shown = cli.ok("alerts", "rules", "show", "--json").json()
    assert shown["version"] == 0
    assert "AccuracyDrop" in shown["effective"]
    assert "LatencyOverSla" in cli.ok("alerts", "rules", "show").out

    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    stored = cli.ok("alerts", "rules", "set", str(rules), "--deployment", DEPLOYMENT, "--json")
    assert stored.json()["version"] == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - name: lowercase\n    signal: x\n    threshold: 1\n")
    assert_one_line_error(cli("alerts", "rules", "set", str(bad)), "rules.0.name")
    broken = tmp_path / "broken.json"
    broken.write_text("{rules: [")
    assert_one_line_error(cli("alerts", "rules", "set", str(broken)), "not valid JSON")
    bad.write_text("rules: [unclosed\n")
    assert_one_line_error(cli("alerts", "rules", "set", str(bad)), "not valid YAML")

    routing = {
        "route": {"receiver": "ops"},
        "receivers": [{"name": "ops", "kind": "webhook", "url": "https://example.invalid/x"}],
        "group_wait_seconds": 0,
    }
    config = tmp_path / "routing.json"
    config.write_text(json.dumps(routing))
    assert cli.ok("alerts", "config", "set", str(config), "--json").json()["version"] == 1
    config.write_text(json.dumps({"route": {"receiver": "nobody"}}))
    assert_one_line_error(cli("alerts", "config", "set", str(config)), "nobody")
    assert '"receiver": "ops"' in cli.ok("alerts", "config", "show").out

    summary = cli.ok("alerts", "evaluate", "--json").json()
    assert summary["firing"] == 1
    assert summary["notifications"] == 1
    [alert] = cli.ok("alerts", "list", "--json").json()
    assert (alert["name"], alert["deployment"]) == ("CanaryRolledBack", DEPLOYMENT)
    assert "CanaryRolledBack" in cli.ok("alerts", "list").out
    acked = cli.ok("alerts", "ack", alert["id"], "--note", "looking", "--json").json()
    assert acked["acknowledged_by"] == "eli"
    assert cli.ok("alerts", "show", alert["id"], "--json").json()["notifications"] == 1
    assert_one_line_error(cli("alerts", "ack", alert["id"]), "acknowledged")
    assert "resolved" in cli.ok("alerts", "resolve", alert["id"], "--note", "fine").out
    assert_one_line_error(cli("alerts", "show", "f" * 32), "no alert")

    made = cli.ok(
        "alerts", "silence", "add", "--match", f"deployment={DEPLOYMENT}",
        "--reason", "planned", "--hours", "1", "--json",
    ).json()  # fmt: skip
    listed = cli.ok("alerts", "silence", "list", "--json").json()
    assert [s["id"] for s in listed] == [made["id"]]
    assert "planned" in cli.ok("alerts", "silence", "list").out
    assert cli.ok("alerts", "silence", "expire", made["id"], "--json").json()["active"] is False
    assert cli.ok("alerts", "silence", "list", "--all", "--json").json()[0]["id"] == made["id"]
    assert_one_line_error(cli("alerts", "silence", "add", "--match", "x", "--reason", "r"), "x")
