"""`medops slo status|report|set` and `medops cost report` end to end through the CLI over the
embedded app: predictions made by one command are recorded (flushed when it ends) and read
by the next; bad input fails on one line."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers.cli import DEPLOYMENT, assert_one_line_error, eval_records, log_in, serving
from tests.helpers.cli_runner import Cli


def test_slo_status_report_set_and_cost(cli: Cli, tmp_path: Path) -> None:
    """After 40 predictions: status shows 40 good requests of 1 (one request) per objective;
    the report files are written; an engineer sets objectives; the cost report has the
    deployment; a bad month, a bad objectives file and an unknown deployment fail on one
    line."""
    serving(cli, tmp_path)
    log_in(cli, "cora")
    body = {"records": [{"features": r} for r in eval_records(40)]}
    cli.ok("predict", DEPLOYMENT, "--input", json.dumps(body), "--json")
    log_in(cli, "eli")
    [status] = cli.ok("slo", "status", "--json").json()
    available = next(o for o in status["objectives"] if o["objective"]["name"] == "availability")
    assert (available["good"], available["total"]) == (1, 1)
    assert "availability" in cli.ok("slo", "status", DEPLOYMENT).out

    written = cli.ok("slo", "report", DEPLOYMENT, "--out", str(tmp_path / "sla"), "--json").json()
    assert Path(written["html"]).read_text().startswith("<!DOCTYPE html>")
    assert json.loads(Path(written["json"]).read_text())["requests"] == 1

    objectives = tmp_path / "objectives.json"
    objectives.write_text(
        json.dumps(
            {
                "period_days": 28,
                "objectives": [{"name": "availability", "kind": "availability", "target": 0.99}],
            }
        )
    )
    stored = cli.ok("slo", "set", DEPLOYMENT, "--file", str(objectives), "--json").json()
    assert (stored["version"], stored["period_days"]) == (1, 28)
    assert "version 2" in cli.ok("slo", "set", DEPLOYMENT, "--file", str(objectives)).out

    cost = cli.ok("cost", "report", "--json").json()
    [item] = cost["deployments"]
    assert (item["deployment"], item["predictions"]) == (DEPLOYMENT, 40)
    assert DEPLOYMENT in cli.ok("cost", "report", "--deployment", DEPLOYMENT).out

    assert_one_line_error(cli("slo", "report", DEPLOYMENT, "--month", "2026-13"), "month")
    objectives.write_text(json.dumps({"objectives": [{"name": "x", "kind": "nope"}]}))
    assert_one_line_error(cli("slo", "set", DEPLOYMENT, "--file", str(objectives)), "kind")
    assert_one_line_error(cli("slo", "status", "nowhere"), "nowhere")
