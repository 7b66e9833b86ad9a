"""Explanations through the CLI over the embedded app: `medops predict --explain` draws each
prediction's contributions as a bar chart, `deploy explain` turns the always-on option on and
off, and an auditor reads the logged explanation back with `audit explanation`."""

from __future__ import annotations

import json
from pathlib import Path

from medops.cli.explain_chart import BAR_WIDTH, bar_rows
from tests.helpers.cli import (
    DEPLOYMENT,
    USER_PW,
    assert_one_line_error,
    eval_records,
    log_in,
    serving,
)
from tests.helpers.cli_runner import Cli


def test_bars_scale_to_the_largest_and_point_by_sign() -> None:
    """The largest magnitude fills the bar width on its side of the axis; a contribution a
    quarter as large gets a quarter of it; a negative one grows left of the axis; zero none."""
    rows = bar_rows(
        [
            {"feature": "bmi", "value": 31.2, "contribution": 0.8},
            {"feature": "s3", "value": 62, "contribution": -0.2},
            {"feature": "sex", "value": "F", "contribution": 0.0},
        ]
    )
    bars = [row[3].plain for row in rows]
    assert bars[0] == " " * BAR_WIDTH + "|" + "+" * BAR_WIDTH
    assert bars[1] == " " * (BAR_WIDTH - BAR_WIDTH // 4) + "-" * (BAR_WIDTH // 4) + "|"
    assert bars[2] == " " * BAR_WIDTH + "|"
    assert [row[:3] for row in rows] == [
        ("bmi", "31.2", "+0.8000"),
        ("s3", "62", "-0.2000"),
        ("sex", "F", "+0.0000"),
    ]


def test_predict_explain_chart_always_on_and_audit_explanation(cli: Cli, tmp_path: Path) -> None:
    """A clinician's `predict --explain` prints the table and a bar chart of the largest
    contributions with base value and output; `--json` carries the explanation. The engineer
    turns on `deploy explain --always`, after which a plain predict is explained; the
    auditor's `audit explanation` shows every contribution and the audit match."""
    serving(cli, tmp_path)
    log_in(cli, "cora")
    record = json.dumps(eval_records(1)[0])
    shown = cli.ok("predict", DEPLOYMENT, "--input", record, "--explain").out
    assert "1 prediction(s)" in shown
    assert "linear (exact), log_odds scale" in shown
    assert "|" + "+" * BAR_WIDTH in shown or "-" * BAR_WIDTH + "|" in shown
    answer = cli.ok("predict", DEPLOYMENT, "--input", record, "--explain", "--json").json()
    (prediction,) = answer["predictions"]
    explanation = prediction["explanation"]
    assert explanation["method"] == "linear"
    total = explanation["base_value"] + explanation["rest"]
    total += sum(c["contribution"] for c in explanation["contributions"])
    assert abs(total - explanation["output"]) < 1e-9
    plain = cli.ok("predict", DEPLOYMENT, "--input", record, "--json").json()
    assert "explanation" not in plain["predictions"][0]
    assert_one_line_error(
        cli("predict", DEPLOYMENT, "--input", record, "--explain", "--output", "x.csv"),
        "--explain",
    )

    log_in(cli, "eli")
    assert_one_line_error(cli("deploy", "explain", DEPLOYMENT, "--reason", "why not"), "--always")
    on = cli.ok(
        "deploy", "explain", DEPLOYMENT, "--always", "--reason", "clinical review", "--json"
    ).json()
    assert on["explain"] is True
    assert "every prediction" in cli.ok("deploy", "status", DEPLOYMENT).out
    log_in(cli, "cora")
    always = cli.ok("predict", DEPLOYMENT, "--input", record, "--json").json()
    assert "explanation" in always["predictions"][0]
    log_in(cli, "eli")
    cli.ok("deploy", "explain", DEPLOYMENT, "--off", "--reason", "review over")

    log_in(cli, "admin")
    cli.ok(
        "users", "create", "ada", "--role", "auditor", "--full-name", "Ada Auditor",
        "--password-stdin", stdin=USER_PW + "\n",
    )  # fmt: skip
    log_in(cli, "ada")
    logged = cli.ok("audit", "explanation", prediction["id"], "--json").json()
    assert logged["audited"] is True
    assert len(logged["contributions"]) == explanation["features"]
    table = cli.ok("audit", "explanation", prediction["id"]).out
    assert "Matches its audit record." in table
    assert f"{len(explanation['contributions'])} contribution(s) shown" in table
