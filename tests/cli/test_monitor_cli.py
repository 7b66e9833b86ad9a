"""`medops monitor` end to end through the CLI over the embedded app: a run with nothing due,
the results and the report of a day the scheduler computed (HTML and JSON files named without
a colon), a count window selected by --version and --sequence, and bad input on one line."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

from medops.api.console.assets import asset_text
from medops.config import Settings
from medops.context import SYSTEM_ACTOR, Context, Origin
from medops.services import build_services
from tests.helpers.cli import (
    DEPLOYMENT,
    assert_one_line_error,
    eval_records,
    log_in,
    serving,
)
from tests.helpers.cli_runner import Cli


def test_monitor_run_results_and_report(cli: Cli, tmp_path: Path, empty_db_url: str) -> None:
    """Nothing is due on the day predictions are made; once the scheduler has computed that
    day (as it would the next day), `monitor results` lists it and `monitor report` writes
    its HTML and JSON; an unknown window kind, a bad --start and a missing report each fail
    on one line."""
    serving(cli, tmp_path)
    log_in(cli, "cora")
    body = {"records": [{"features": r} for r in eval_records(40)]}
    cli.ok("predict", DEPLOYMENT, "--input", json.dumps(body), "--json")
    log_in(cli, "eli")
    first = cli.ok("monitor", "run", "--json").json()
    assert first["computed"] == []  # the day is not over: the run says when it will be
    (pending,) = first["pending"]
    assert (pending["deployment"], pending["predictions"]) == (DEPLOYMENT, 40)
    assert pending["complete_at"].endswith("T00:01:00+00:00")
    told = cli.ok("monitor", "run").out
    assert "not complete yet" in told
    assert "complete at" in told

    settings = Settings(home=tmp_path / "home", database_url=empty_db_url, mfa_required_roles=())
    services = build_services(settings)
    try:  # the scheduler's run, a day later
        ctx = Context(actor=SYSTEM_ACTOR, origin=Origin(source_ip="local"))
        later = services.clock.now() + timedelta(days=1)
        computed = services.monitoring.run(ctx, "day", now=later).computed
    finally:
        services.close()
    assert [c["rows"] for c in computed] == [40]

    listed = cli.ok("monitor", "results", DEPLOYMENT, "--json").json()
    assert [r["rows"] for r in listed] == [40]
    table = cli.ok("monitor", "results", DEPLOYMENT)
    assert listed[0]["verdict"] in table.out
    out = tmp_path / "reports"
    written = cli.ok("monitor", "report", DEPLOYMENT, "--out", str(out)).out
    assert f"{DEPLOYMENT} v1 day window" in written
    assert " 00:00 to " in written
    pages = sorted(p.suffix for p in out.iterdir())
    assert pages == [".html", ".json"]
    assert all(":" not in p.name for p in out.iterdir())
    document = json.loads(next(out.glob("*.json")).read_text())
    assert document["rows"] == 40
    assert "<svg" in next(out.glob("*.html")).read_text()
    (day,) = listed
    assert sorted(p.name for p in out.iterdir()) == [
        f"monitoring-{DEPLOYMENT}-day-v1-{day['sequence']}{suffix}" for suffix in (".html", ".json")
    ]

    services = build_services(settings)
    try:  # the same predictions cut into count windows of 20: two, sharing a start
        ctx = Context(actor=SYSTEM_ACTOR, origin=Origin(source_ip="local"))
        later = services.clock.now() + timedelta(days=1)
        counted = services.monitoring.run(ctx, "count:20", now=later).computed
    finally:
        services.close()
    assert [c["sequence"] for c in counted] == [0, 1]
    picked = cli.ok(
        "monitor", "report", DEPLOYMENT, "--window", "count:20", "--version", "1",
        "--sequence", "0", "--out", str(tmp_path / "count"), "--json",
    ).json()  # fmt: skip
    page = Path(picked["html"])
    assert page.name == f"monitoring-{DEPLOYMENT}-count20-v1-0.html"
    assert "window #1 (predictions 1 to 20)" in picked["window"]
    text = page.read_text()
    assert "window #1 (predictions 1 to 20)" in text
    assert f"<style>{asset_text('console.css')}</style>" in text
    assert "<script" not in text
    assert "<link" not in text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert_one_line_error(
        cli("monitor", "report", DEPLOYMENT, "--window", "count:20", "--sequence", "9"),
        "no window computed",
    )

    assert_one_line_error(cli("monitor", "run", "--window", "month"), "window")
    assert_one_line_error(cli("monitor", "report", DEPLOYMENT, "--start", "yesterday"), "--start")
    assert_one_line_error(cli("monitor", "report", "nowhere"), "no window computed")
