"""What the exporter is written against: the built-in rules by name and an example routing
config that uses every kind of receiver.

``builtin_rules()`` is the one place the exporter reads the default rules from: the engine's
``alerting/defaults.py``. ``tests/alerting/test_export.py`` says when the committed files under
``deploy/prometheus`` no longer match.
"""

from __future__ import annotations

from datetime import UTC, datetime

from medops.alerting.defaults import DEFAULT_RULES
from medops.alerting.schemas import (
    AlertingConfig,
    AlertRule,
    EscalationLevel,
    EscalationPolicy,
    Inhibition,
    Matcher,
    ReceiverConfig,
    Route,
    Schedule,
    Team,
)


def builtin_rules() -> list[AlertRule]:
    """The built-in default rules, in order (see the module's docstring)."""
    return list(DEFAULT_RULES)


def _team(team: Team) -> list[Matcher]:
    return [Matcher(label="team", value=team)]


def example_config() -> AlertingConfig:
    """A routing config for a hospital with the three teams, every receiver kind, an
    escalation policy and the default inhibitions: what ``alertmanager.yml`` is made from."""
    monitoring_alerts = (
        "AccuracyDrop|DriftDetected|FeatureDrift|CbpeOutsideBand|CalibrationPoor"
        "|FairnessOutsideBand"
    )
    return AlertingConfig(
        route=Route(
            receiver="ops-slack",
            routes=[
                Route(
                    matchers=[*_team("ops"), Matcher(label="severity", value="critical")],
                    receiver="ops-pagerduty",
                    escalation="ops-escalation",
                    group_wait_seconds=10,
                    **{"continue": True},
                ),
                Route(matchers=_team("ops"), receiver="ops-slack"),
                Route(
                    matchers=_team("data_science"),
                    receiver="data-science-email",
                    repeat_interval_seconds=12 * 3600,
                    routes=[
                        Route(
                            matchers=[Matcher(label="severity", value="info")],
                            receiver="data-science-teams",
                        )
                    ],
                ),
                Route(
                    matchers=_team("clinical_safety"),
                    receiver="clinical-opsgenie",
                    group_by=["alertname", "deployment", "severity"],
                ),
                Route(
                    matchers=[Matcher(label="deployment", op="=~", value="icu-.*")],
                    receiver="icu-webhook",
                ),
                Route(
                    matchers=[Matcher(label="alertname", value="ReceiverFailing")],
                    receiver="siem",
                ),
            ],
        ),
        receivers=[
            ReceiverConfig(
                name="ops-slack",
                kind="slack",
                secret="ops-slack-url",  # noqa: S106 - a secret's name, not a secret  # nosec B106
            ),
            ReceiverConfig(
                name="ops-pagerduty",
                kind="pagerduty",
                secret="ops-pagerduty-key",  # noqa: S106 - a secret's name, not a secret  # nosec B106
                url="https://events.pagerduty.com/v2/enqueue",
            ),
            ReceiverConfig(
                name="data-science-email",
                kind="email",
                to=["ml-team@hospital.example", "ml-lead@hospital.example"],
                sender="medops@hospital.example",
                smtp_host="smtp.hospital.example",
                smtp_user="medops",
                secret="smtp-password",  # noqa: S106 - a secret's name, not a secret  # nosec B106
            ),
            ReceiverConfig(
                name="data-science-teams",
                kind="teams",
                url="https://hospital.webhook.office.com/webhookb2/data-science",
            ),
            ReceiverConfig(
                name="clinical-opsgenie",
                kind="opsgenie",
                secret="clinical-opsgenie-key",  # noqa: S106 - a secret's name, not a secret  # nosec B106
                url="https://api.eu.opsgenie.com/",
            ),
            ReceiverConfig(
                name="icu-webhook",
                kind="webhook",
                url="https://icu-dashboard.hospital.example/hooks/medops",
                secret="icu-hmac",  # noqa: S106 - a secret's name, not a secret  # nosec B106
            ),
            ReceiverConfig(
                name="siem",
                kind="alertmanager",
                url="https://siem.hospital.example/alertmanager-webhook",
            ),
        ],
        escalation_policies=[
            EscalationPolicy(
                name="ops-escalation",
                levels=[
                    EscalationLevel(receivers=["ops-pagerduty"], schedule="ops-oncall"),
                    EscalationLevel(receivers=["ops-slack"], after_minutes=15),
                ],
                repeat=1,
            )
        ],
        schedules=[
            Schedule(
                name="ops-oncall",
                users=["alice", "bob"],
                start=datetime(2026, 1, 5, 8, tzinfo=UTC),
            )
        ],
        inhibitions=[
            Inhibition(
                source=[Matcher(label="alertname", op="=~", value="MonitoringStale|NoOutcomes")],
                target=[Matcher(label="alertname", op="=~", value=monitoring_alerts)],
            )
        ],
    )
