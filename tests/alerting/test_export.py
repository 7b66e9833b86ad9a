"""Exporting medops' alert rules for Prometheus and its routing for Alertmanager: the files
pass the real ``promtool check rules``, ``promtool test rules`` and ``amtool check-config``
(Debian's prometheus and prometheus-alertmanager); without the tools these tests skip, and
under ``MEDOPS_REQUIRE_PROMTOOL=1`` (as in .ci/run) they fail instead."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from medops.alerting.defaults import DEFAULT_RULE_SET as DEFAULTS
from medops.alerting.defaults import effective_rules
from medops.alerting.export import (
    BRIDGED,
    NATIVE,
    SLO_ALERTS,
    SloTargets,
    prometheus_rules,
    render,
    templated,
)
from medops.alerting.export_alertmanager import alertmanager_config
from medops.alerting.export_files import (
    ExportResult,
    export_alertmanager,
    export_prometheus,
)
from medops.alerting.export_reference import builtin_rules, example_config
from medops.alerting.schemas import (
    AlertingConfig,
    AlertRule,
    Inhibition,
    Matcher,
    ReceiverConfig,
    Route,
    RuleSet,
)
from medops.api.app import create_app
from medops.api.routers.deployments import UNKNOWN
from medops.cli.alerts_export import export
from medops.cli.output import error_line
from medops.config import Settings
from medops.errors import InvalidInputError

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
REQUIRE_ENV = "MEDOPS_REQUIRE_PROMTOOL"
# The built-in rules as issue 19 names them: each must have an export (native, burn-rate or
# bridged) whatever alerting/defaults.py holds.
ISSUE_RULES = (
    "AccuracyDrop", "LatencyOverSla", "ErrorRateHigh", "DriftDetected", "FeatureDrift",
    "CbpeOutsideBand", "CalibrationPoor", "FairnessOutsideBand", "OutcomeBacklog", "NoOutcomes",
    "MonitoringStale", "ShedRequests", "CanaryRolledBack", "NoTraffic", "ReceiverFailing",
    "SloFastBurn", "SloSlowBurn",
)  # fmt: skip


def _tool(name: str) -> str:
    found = shutil.which(name) or (
        f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None
    )
    if found is None:
        why = f"{name} is not installed (apt-get install prometheus prometheus-alertmanager)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{why}, and {REQUIRE_ENV}=1")
        pytest.skip(why)
    return found


@pytest.fixture
def promtool() -> str:
    """Debian's promtool."""
    return _tool("promtool")


@pytest.fixture
def amtool() -> str:
    """Debian's amtool."""
    return _tool("amtool")


def _run(*command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def _write(folder: Path, result: ExportResult) -> None:
    for file in result.files:
        (folder / file.name).write_text(file.content)


def _rule(name: str, **changes: object) -> AlertRule:
    rule = next(r for r in builtin_rules() if r.name == name)
    return rule.model_copy(update=changes)


def test_every_builtin_rule_has_an_export() -> None:
    """Each built-in rule (and each the issue lists) is native PromQL, a burn-rate rule or
    bridged over medops_alerts, never silently left out."""
    names = set(ISSUE_RULES) | {r.name for r in builtin_rules()}
    exported = set(NATIVE) | set(SLO_ALERTS) | set(BRIDGED)
    assert names - exported == set()
    assert {a.alert for a in prometheus_rules(builtin_rules()).alerts()} == names


def test_exported_rules_pass_promtool_check_rules(tmp_path: Path, promtool: str) -> None:
    """The rule file for the built-in rules is valid for Prometheus (promtool check rules)."""
    _write(tmp_path, export_prometheus(builtin_rules()))
    checked = _run(promtool, "check", "rules", "medops-rules.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 29 rules found" in checked.stdout


def test_exported_rules_pass_their_promtool_unit_tests(tmp_path: Path, promtool: str) -> None:
    """promtool test rules passes: ErrorRateHigh, LatencyOverSla, DriftDetected, the fast and
    slow burns and every other rule fire on the failing deployment only, after their for."""
    result = export_prometheus(builtin_rules())
    _write(tmp_path, result)
    tests = result.files[1].content
    for name in ("ErrorRateHigh", "LatencyOverSla", "DriftDetected", "SloFastBurn"):
        assert f"alertname: {name}" in tests
    tested = _run(promtool, "test", "rules", "medops-rules.test.yml", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


@pytest.mark.parametrize(
    ("name", "changes"),
    [
        ("ErrorRateHigh", {"threshold": 0.05}),  # 4.8% errors no longer fire
        ("LatencyOverSla", {"for_seconds": 900}),  # still pending at 10 minutes
        ("DriftDetected", {"severity": "critical"}),  # labels differ from the expected
    ],
)
def test_promtool_unit_tests_catch_a_rule_that_changed(
    tmp_path: Path, promtool: str, name: str, changes: dict[str, object]
) -> None:
    """The unit tests pin each rule: a changed threshold, for or severity makes them fail."""
    result = export_prometheus(builtin_rules())
    changed = [_rule(name, **changes) if r.name == name else r for r in builtin_rules()]
    (tmp_path / "medops-rules.yml").write_text(render(prometheus_rules(changed)))
    (tmp_path / "medops-rules.test.yml").write_text(result.files[1].content)
    tested = _run(promtool, "test", "rules", "medops-rules.test.yml", cwd=tmp_path)
    assert tested.returncode != 0
    assert f"alertname: {name}" in tested.stdout + tested.stderr


def test_exported_alerts_carry_the_rules_labels_and_annotations() -> None:
    """Every exported alert has the rule's severity, team and labels, and the rule's
    annotations (summary, runbook_url) with placeholders as Prometheus templates."""
    own = _rule("ErrorRateHigh", labels={"service": "icu"})
    rules = effective_rules(DEFAULTS, RuleSet(scope="sepsis", rules=[own]))
    by_name = {r.name: r for r in rules}
    for alert in prometheus_rules(rules).alerts():
        rule = by_name[alert.alert]
        extra = {"objective": alert.labels["objective"]} if rule.name in SLO_ALERTS else {}
        assert alert.labels == {"severity": rule.severity, "team": rule.team} | rule.labels | extra
        assert set(alert.annotations) == set(rule.annotations) >= {"summary", "runbook_url"}
        assert alert.annotations["runbook_url"] == rule.annotations["runbook_url"]
        assert "{deployment}" not in alert.annotations["summary"]
    assert by_name["ErrorRateHigh"].labels == {"service": "icu"}


def test_placeholders_become_templates_and_fixed_labels_are_written_in() -> None:
    """``{deployment}`` becomes ``{{ $labels.deployment }}``, ``{value}`` ``{{ $value }}``, and
    a label the rule sets itself (objective) is written in, since Prometheus templates see
    only the series' labels."""
    text = templated("{deployment} burns {objective} at {value}", {"objective": "latency"})
    assert text == "{{ $labels.deployment }} burns latency at {{ $value }}"


def test_thresholds_and_for_come_from_the_rule() -> None:
    """A deployment's own thresholds and for are what the exported expressions compare."""
    rules = effective_rules(
        DEFAULTS,
        RuleSet(
            scope="sepsis",
            rules=[
                _rule("ErrorRateHigh", threshold=0.002, for_seconds=120),
                _rule("LatencyOverSla", threshold=250),
            ],
        ),
    )
    alerts = {a.alert: a for a in prometheus_rules(rules, deployment="sepsis").alerts()}
    assert alerts["ErrorRateHigh"].expr.endswith("> 0.002")
    assert alerts["ErrorRateHigh"].for_ == "2m"
    assert alerts["LatencyOverSla"].expr.endswith("> 0.25")
    assert alerts["LatencyOverSla"].for_ == "5m"


def test_a_deployment_export_reads_only_its_series(tmp_path: Path, promtool: str) -> None:
    """With a deployment, every selector names it, and the generated tests still pass."""
    result = export_prometheus(builtin_rules(), deployment="icu-sepsis")
    text = result.files[0].content
    selectors = re.findall(r"medops_[a-z_]+(?:\{[^}]*\})?(?=\[|\)| |$)", text, re.M)
    assert selectors
    assert all('deployment="icu-sepsis"' in s for s in selectors), selectors
    _write(tmp_path, result)
    tested = _run(promtool, "test", "rules", "medops-rules.test.yml", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_disabled_rules_are_left_out_and_unknown_names_are_bridged() -> None:
    """A disabled rule is not exported; a deployment's own rule of a new name fires in
    Prometheus when medops fires it (bridged over medops_alerts)."""
    own = AlertRule(name="SepsisScoreLow", signal="performance_drop", threshold=2)
    rules = effective_rules(
        DEFAULTS,
        RuleSet(scope="sepsis", rules=[_rule("NoTraffic", enabled=False), own]),
    )
    alerts = {a.alert: a for a in prometheus_rules(rules).alerts()}
    assert "NoTraffic" not in alerts
    assert alerts["SepsisScoreLow"].expr == (
        'max by (deployment) (medops_alerts{alertname="SepsisScoreLow",'
        'state=~"firing|acknowledged"}) > 0'
    )


def test_burn_rate_alerts_follow_the_sre_workbook() -> None:
    """The fast burn pages at 14.4x the budget over 1h and 5m or 6x over 6h and 30m; the slow
    burn tickets at 1x over 3d and 6h; for 99.9% availability and 95% latency under 0.5 s."""
    alerts = prometheus_rules(builtin_rules()).alerts()
    burns = {(a.alert, a.labels["objective"]): a.expr for a in alerts if a.alert in SLO_ALERTS}
    fast = burns["SloFastBurn", "availability"]
    assert "deployment:medops_prediction_errors:ratio_rate1h > (14.4 * 0.001)" in fast
    assert "deployment:medops_prediction_errors:ratio_rate5m > (14.4 * 0.001)" in fast
    assert "deployment:medops_prediction_errors:ratio_rate6h > (6 * 0.001)" in fast
    assert "deployment:medops_prediction_errors:ratio_rate30m > (6 * 0.001)" in fast
    slow = burns["SloSlowBurn", "latency"]
    assert "deployment:medops_prediction_slow:ratio_rate3d > (1 * 0.05)" in slow
    assert "deployment:medops_prediction_slow:ratio_rate6h > (1 * 0.05)" in slow
    recording = render(prometheus_rules(builtin_rules()))
    assert 'medops_prediction_latency_seconds_bucket{le="0.5"}[3d]' in recording


def test_a_latency_threshold_off_the_histogram_is_refused() -> None:
    """The latency objective's threshold must be a bound of the latency histogram."""
    with pytest.raises(InvalidInputError) as raised:
        prometheus_rules(builtin_rules(), slo=SloTargets(latency_threshold_seconds=0.3))
    assert [e.field for e in raised.value.errors] == ["latency_threshold_seconds"]


def test_alertmanager_config_passes_amtool(tmp_path: Path, amtool: str) -> None:
    """The example routing config (every receiver kind, nested routes, continue, inhibitions)
    exports to a file amtool check-config accepts."""
    _write(tmp_path, export_alertmanager(example_config()))
    checked = _run(amtool, "check-config", "alertmanager.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "7 receivers" in checked.stdout
    assert "1 inhibit rules" in checked.stdout


def test_the_default_config_sends_nothing_and_passes_amtool(tmp_path: Path, amtool: str) -> None:
    """medops' starting config (a root route with no receiver: alerts tracked, nothing sent)
    exports to a root receiver with no integration, with the default inhibition."""
    muted = "AccuracyDrop|DriftDetected"
    config = AlertingConfig(
        route=Route(),
        inhibitions=[
            Inhibition(
                source=[Matcher(label="alertname", op="=~", value="MonitoringStale|NoOutcomes")],
                target=[Matcher(label="alertname", op="=~", value=muted)],
            )
        ],
    )
    text = alertmanager_config(config)
    assert "route:\n  receiver: nowhere\n" in text
    assert "receivers:\n  - name: nowhere\ninhibit_rules:\n" in text
    (tmp_path / "alertmanager.yml").write_text(text)
    checked = _run(amtool, "check-config", "alertmanager.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_alertmanager_config_maps_routes_matchers_and_durations() -> None:
    """Matchers use the string syntax, timings become durations, continue is kept."""
    text = alertmanager_config(example_config())
    assert "  group_wait: 30s\n  group_interval: 5m\n  repeat_interval: 4h\n" in text
    assert '        - team="ops"\n        - severity="critical"\n' in text
    assert "      continue: true\n" in text
    assert "      repeat_interval: 12h\n" in text
    assert 'alertname=~"AccuracyDrop|DriftDetected|' in text


def test_secrets_are_files_never_inline() -> None:
    """Every secret is a *_file path under the secrets folder; no secret value appears."""
    text = alertmanager_config(example_config(), secrets_dir="/run/secrets/am")
    files = re.findall(r"(\w+_file): \"?([^\"\n]+)", text)
    assert {key for key, _ in files} == {
        "api_url_file", "routing_key_file", "auth_password_file", "api_key_file",
        "credentials_file",
    }  # fmt: skip
    assert all(path.startswith("/run/secrets/am/") for _, path in files)
    assert "api_key:" not in text
    assert "routing_key:" not in text
    assert "auth_password:" not in text


def test_teams_is_msteams_from_alertmanager_026_and_a_webhook_before() -> None:
    """Alertmanager 0.26 has msteams_configs; the installed 0.25 gets a webhook instead."""
    assert "msteams_configs" not in alertmanager_config(example_config())
    newer = alertmanager_config(example_config(), version=(0, 26))
    assert "  - name: data-science-teams\n    msteams_configs:\n" in newer


def test_a_config_alertmanager_cannot_take_is_refused_naming_the_fields() -> None:
    """A receiver without its secret, a route to an unknown receiver and a root route with
    matchers are refused, each field named."""
    config = AlertingConfig(
        route=Route(
            receiver="pager",
            matchers=[Matcher(label="team", value="ops")],
            routes=[Route(receiver="nobody")],
        ),
        receivers=[ReceiverConfig(name="pager", kind="pagerduty")],
        inhibitions=[Inhibition(source=[], target=[])],
    )
    with pytest.raises(InvalidInputError) as raised:
        alertmanager_config(config)
    fields = [e.field for e in raised.value.errors]
    assert fields == ["route.matchers", "route.routes[0].receiver", "receivers[0].secret"]


def test_committed_files_are_what_the_exporter_writes_now() -> None:
    """deploy/prometheus holds the current export (regenerate: docs/alerting-export.md)."""
    exported = [
        *export_prometheus(builtin_rules()).files,
        *export_alertmanager(example_config()).files,
    ]
    stale = [f.name for f in exported if (DEPLOY / f.name).read_text() != f.content]
    assert stale == [], "regenerate with medops alerts export --output deploy/prometheus"


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command("export")(export)
    app.command("version")(lambda: None)  # a second command keeps export a subcommand
    return app


def test_cli_writes_the_files_and_answers_json(tmp_path: Path) -> None:
    """--output writes the rule file and its tests; --json describes what was written (the
    built-in rules given as a file: without one the command reads the installation's, as the
    README's first day shows)."""
    rules = tmp_path / "rules.json"
    rules.write_text(RuleSet(scope="*", rules=builtin_rules()).model_dump_json())
    out = tmp_path / "out"
    out.mkdir()
    runner = CliRunner()
    answer = runner.invoke(
        _cli(),
        ["export", "--format", "prometheus", "--rules", str(rules), "--output", str(out), "--json"],
    )
    assert answer.exit_code == 0, answer.output
    result = ExportResult.model_validate_json(answer.stdout)
    assert [f.name for f in result.files] == ["medops-rules.yml", "medops-rules.test.yml"]
    assert result.alerts == 29 - result.recording_rules
    assert (out / "medops-rules.yml").read_text() == result.files[0].content


def test_cli_prints_the_file_without_output_and_reads_a_routing_config(tmp_path: Path) -> None:
    """Without --output the file goes to stdout; --config reads a routing config's JSON."""
    config = AlertingConfig(
        route=Route(receiver="hook"),
        receivers=[ReceiverConfig(name="hook", kind="webhook", url="https://h.example/x")],
    )
    path = tmp_path / "routing.json"
    path.write_text(config.model_dump_json(by_alias=True))
    answer = CliRunner().invoke(
        _cli(), ["export", "--format", "alertmanager", "--config", str(path)]
    )
    assert answer.exit_code == 0, answer.output
    assert answer.stdout == alertmanager_config(config)


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        (["--format", "nagios"], "format"),
        (["--format", "alertmanager", "--alertmanager-version", "latest"], "alertmanager_version"),
        (["--format", "prometheus", "--rules", "{tmp}/rules.json"], "rules.0.threshold"),
        (["--format", "prometheus", "--rules", "{tmp}/missing.json"], "file"),
        (["--format", "alertmanager", "--deployment", "sepsis"], "deployment"),
        (["--format", "prometheus", "--config", "{tmp}/rules.json"], "config"),
    ],
)
def test_cli_refuses_bad_input_naming_the_field(
    tmp_path: Path, arguments: list[str], field: str
) -> None:
    """A bad format, version or rule file, or an option of the other format, is one error
    naming the field, not a traceback."""
    (tmp_path / "rules.json").write_text('{"scope": "*", "rules": [{"name": "A", "signal": "x"}]}')
    argv = ["export", *(a.replace("{tmp}", str(tmp_path)) for a in arguments)]
    answer = CliRunner().invoke(_cli(), argv)
    assert isinstance(answer.exception, InvalidInputError)
    assert [e.field for e in answer.exception.errors] == [field]
    assert "\n" not in error_line(answer.exception)


def test_exported_rules_read_only_metrics_medops_serves() -> None:
    """Every metric the exported rules read is one the app registers (under the name
    prometheus_client serves: _total, _bucket, _count), so a renamed metric fails here."""
    app = create_app(Settings(home=Path("/nonexistent"), database_url="sqlite://"))
    served: set[str] = set()
    for family in app.state.metrics.registry.collect():
        if family.type == "counter":
            served.add(f"{family.name}_total")
        elif family.type == "histogram":
            served.update(f"{family.name}{end}" for end in ("_bucket", "_count", "_sum"))
        else:
            served.add(family.name)
    text = render(prometheus_rules(builtin_rules()))
    read = set(re.findall(r"(?<![:\w])(medops_[a-z_]+)(?![:\w])", text))
    assert len(read) >= 9
    # medops_alerts is the engine's collector (alerting/telemetry.py), registered at the merge.
    assert read - served <= {"medops_alerts"}
    assert f'deployment!="{UNKNOWN}"' in text  # the label requests to unknown names get
