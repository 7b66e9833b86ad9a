"""What the exporter is written against: the built-in rules by name and an example routing
config that uses every kind of receiver.

``builtin_rules()`` is the one place the exporter reads the default rules from. Until the
engine's ``alerting/defaults.py`` is merged it returns ``REFERENCE_RULES`` below, a copy of
that module's ``DEFAULT_RULES`` as the engine wrote them (same names, signals, thresholds,
``for``, severities, teams and annotations); at the merge it returns ``DEFAULT_RULES`` itself
and this copy goes. ``tests/alerting/test_export.py`` says when the committed files under
``deploy/prometheus`` no longer match.
"""

from __future__ import annotations

from datetime import UTC, datetime

from medops.alerting.schemas import (
    AlertingConfig,
    AlertRule,
    Comparison,
    EscalationLevel,
    EscalationPolicy,
    Inhibition,
    Matcher,
    ReceiverConfig,
    Route,
    Schedule,
    Severity,
    Team,
)

RUNBOOKS = "docs/runbooks.md"


def _rule(
    name: str,
    signal: str,
    op: Comparison,
    threshold: float,
    severity: Severity,
    team: Team,
    summary: str,
    for_seconds: int = 0,
) -> AlertRule:
    return AlertRule(
        name=name,
        signal=signal,
        op=op,
        threshold=threshold,
        for_seconds=for_seconds,
        severity=severity,
        team=team,
        annotations={"summary": summary, "runbook_url": f"{RUNBOOKS}#{name.lower()}"},
    )


REFERENCE_RULES: tuple[AlertRule, ...] = (
    _rule("AccuracyDrop", "performance_drop", ">", 5.0, "critical", "clinical_safety",
          "Realised performance dropped more than 5% below the reference"),
    _rule("LatencyOverSla", "latency_p95_ms", ">", 500.0, "critical", "ops",
          "95th percentile latency above the 500 ms SLA", for_seconds=300),
    _rule("ErrorRateHigh", "error_rate", ">", 0.01, "critical", "ops",
          "More than 1% of prediction requests failed", for_seconds=300),
    _rule("DriftDetected", "drift_detected", ">", 0.0, "warning", "data_science",
          "The latest monitoring window found input drift"),
    _rule("FeatureDrift", "feature_drift", ">", 0.0, "info", "data_science",
          "A feature drifted in the latest monitoring window"),
    _rule("CbpeOutsideBand", "cbpe_outside_band", ">", 0.0, "warning", "data_science",
          "Estimated performance (CBPE) left its expected band"),
    _rule("CalibrationPoor", "calibration_error", ">", 0.1, "warning", "clinical_safety",
          "Expected calibration error above 0.1"),
    _rule("FairnessOutsideBand", "fairness_ratio", "<", 0.8, "critical", "clinical_safety",
          "A subgroup's performance ratio fell below 0.8"),
    _rule("OutcomeBacklog", "outcome_backlog", ">", 0.5, "warning", "clinical_safety",
          "Most predictions older than a day still have no outcome"),
    _rule("NoOutcomes", "no_outcomes", ">", 0.0, "warning", "clinical_safety",
          "The latest window has predictions but no outcomes"),
    _rule("MonitoringStale", "monitoring_stale", ">", 0.0, "warning", "ops",
          "Monitoring has not computed a window for twice its length"),
    _rule("ShedRequests", "shed_rate", ">", 0.0, "warning", "ops",
          "Requests are being shed under load", for_seconds=300),
    _rule("CanaryRolledBack", "canary_rolled_back", ">", 0.0, "warning", "ops",
          "A canary was rolled back automatically in the last hour"),
    _rule("NoTraffic", "no_traffic", ">", 0.0, "warning", "ops",
          "A deployment with traffic in the past day had none for 15 minutes"),
    _rule("ReceiverFailing", "receiver_failing", ">", 0.0, "critical", "ops",
          "A notification receiver keeps failing"),
    _rule("SloFastBurn", "slo_fast_burn", ">", 0.0, "critical", "ops",
          "An SLO's error budget burns fast (14.4x over 1 h and 5 m, or 6x over 6 h and 30 m)"),
    _rule("SloSlowBurn", "slo_slow_burn", ">", 0.0, "warning", "ops",
          "An SLO's error budget burns steadily (1x over 3 d and 6 h)"),
)  # fmt: skip


def builtin_rules() -> list[AlertRule]:
    """The built-in default rules, in order (see the module's docstring)."""
    return list(REFERENCE_RULES)


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
                secret="ops-slack-url",  # noqa: S106 - a secret's name, not a secret
            ),
            ReceiverConfig(
                name="ops-pagerduty",
                kind="pagerduty",
                secret="ops-pagerduty-key",  # noqa: S106 - a secret's name, not a secret
                url="https://events.pagerduty.com/v2/enqueue",
            ),
            ReceiverConfig(
                name="data-science-email",
                kind="email",
                to=["ml-team@hospital.example", "ml-lead@hospital.example"],
                sender="medops@hospital.example",
                smtp_host="smtp.hospital.example",
                smtp_user="medops",
                secret="smtp-password",  # noqa: S106 - a secret's name, not a secret
            ),
            ReceiverConfig(
                name="data-science-teams",
                kind="teams",
                url="https://hospital.webhook.office.com/webhookb2/data-science",
            ),
            ReceiverConfig(
                name="clinical-opsgenie",
                kind="opsgenie",
                secret="clinical-opsgenie-key",  # noqa: S106 - a secret's name, not a secret
                url="https://api.eu.opsgenie.com/",
            ),
            ReceiverConfig(
                name="icu-webhook",
                kind="webhook",
                url="https://icu-dashboard.hospital.example/hooks/medops",
                secret="icu-hmac",  # noqa: S106 - a secret's name, not a secret
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
