"""`medops monitor config` and `medops monitor configure` end to end through the CLI over the
embedded app: the defaults, changes that keep what is not given, clearing the overrides, and
refusals and bad input on one line."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.cli import (
    DEPLOYMENT,
    assert_one_line_error,
    log_in,
    serving,
)
from tests.helpers.cli_runner import Cli


def test_monitor_config_shows_and_configure_changes_the_deployments_configuration(
    cli: Cli, tmp_path: Path
) -> None:
    """`monitor config` shows the defaults; `monitor configure` adds overrides and changes
    the correction, mode and minimum rows, keeping what is not given; --clear-thresholds
    drops the overrides; a data scientist is refused; a malformed or invalid override, an
    unknown correction, too small a minimum, nothing to change and an unknown deployment
    each fail on one line."""
    serving(cli, tmp_path)  # signed in as the engineer eli
    shown = cli.ok("monitor", "config", DEPLOYMENT, "--json").json()
    assert shown["thresholds"] == {}
    assert (shown["correction"], shown["thresholds_mode"], shown["min_samples"]) == (
        "holm",
        "fixed",
        30,
    )
    assert shown["updated_at"] is None
    assert "never (the defaults)" in cli.ok("monitor", "config", DEPLOYMENT).out

    changed = cli.ok(
        "monitor", "configure", DEPLOYMENT,
        "--threshold", "bmi:psi=0.3", "--threshold", "age:ks=0.01",
        "--correction", "bh", "--thresholds", "learned", "--min-samples", "50", "--json",
    ).json()  # fmt: skip
    assert changed["thresholds"] == {"age": {"ks": 0.01}, "bmi": {"psi": 0.3}}
    assert (changed["correction"], changed["thresholds_mode"], changed["min_samples"]) == (
        "bh",
        "learned",
        50,
    )
    assert changed["updated_by"] == "eli"
    kept = cli.ok("monitor", "configure", DEPLOYMENT, "--threshold", "bmi:jensenshannon=0.2")
    assert "bmi:jensenshannon=0.2" in kept.out
    assert "bmi:psi=0.3" in kept.out
    table = cli.ok("monitor", "config", DEPLOYMENT).out
    assert "learned" in table
    assert "bh" in table
    cleared = cli.ok("monitor", "configure", DEPLOYMENT, "--clear-thresholds", "--json").json()
    assert cleared["thresholds"] == {}
    assert cleared["correction"] == "bh"

    configure = ("monitor", "configure", DEPLOYMENT)
    assert_one_line_error(cli(*configure, "--threshold", "bmi-psi"), "FEATURE:TEST=VALUE")
    assert_one_line_error(cli(*configure, "--threshold", "bmi:psi=high"), "--threshold")
    assert_one_line_error(cli(*configure, "--threshold", "bmi:t-test=1"), "unknown drift test")
    assert_one_line_error(cli(*configure, "--threshold", "bmi:psi=-1"), "must be above 0")
    assert_one_line_error(cli(*configure, "--correction", "fdr"), "--correction")
    assert_one_line_error(cli(*configure, "--min-samples", "1"), "--min-samples")
    assert_one_line_error(cli(*configure), "nothing to change")
    assert_one_line_error(cli("monitor", "config", "nowhere"), "no deployment named")
    log_in(cli, "dana")
    assert cli.ok("monitor", "config", DEPLOYMENT, "--json").json()["thresholds"] == {}
    assert_one_line_error(cli(*configure, "--correction", "none"), "monitoring:configure")
