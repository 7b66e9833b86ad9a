"""The files ``medops alerts export`` writes, as typed results: what the CLI prints or saves
and what ``deploy/prometheus`` holds (its test compares the two)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from medops.alerting.export import SloTargets, prometheus_rules, render
from medops.alerting.export_alertmanager import DEFAULT_SECRETS_DIR, alertmanager_config
from medops.alerting.export_promtool import promtool_tests
from medops.alerting.schemas import AlertingConfig, AlertRule

ExportFormat = Literal["prometheus", "alertmanager"]
RULES_FILE = "medops-rules.yml"
TESTS_FILE = "medops-rules.test.yml"
ALERTMANAGER_FILE = "alertmanager.yml"


class ExportedFile(BaseModel):
    """One generated file: its name, where it was written (None: not written) and text."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    path: str | None = None
    content: str


class ExportResult(BaseModel):
    """What an export produced: the files, and how many alerting and recording rules or
    receivers and routes they hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: ExportFormat
    deployment: str | None = None
    alerts: int = 0
    recording_rules: int = 0
    receivers: int = 0
    files: list[ExportedFile]


def export_prometheus(
    rules: Sequence[AlertRule],
    *,
    deployment: str | None = None,
    slo: SloTargets | None = None,
) -> ExportResult:
    """The rule file and its promtool unit tests."""
    rule_file = prometheus_rules(rules, deployment=deployment, slo=slo)
    alerts = rule_file.alerts()
    recording = sum(len(g.rules) for g in rule_file.groups) - len(alerts)
    tests = promtool_tests(rule_file, rules_path=RULES_FILE, deployment=deployment)
    return ExportResult(
        format="prometheus",
        deployment=deployment,
        alerts=len(alerts),
        recording_rules=recording,
        files=[
            ExportedFile(name=RULES_FILE, content=render(rule_file)),
            ExportedFile(name=TESTS_FILE, content=tests),
        ],
    )


def export_alertmanager(
    config: AlertingConfig,
    *,
    secrets_dir: str = DEFAULT_SECRETS_DIR,
    version: tuple[int, int] = (0, 25),
) -> ExportResult:
    """The Alertmanager configuration file."""
    text = alertmanager_config(config, secrets_dir=secrets_dir, version=version)
    return ExportResult(
        format="alertmanager",
        receivers=len(config.receivers),
        files=[ExportedFile(name=ALERTMANAGER_FILE, content=text)],
    )
