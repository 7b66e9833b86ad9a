"""The rules, inhibitions and routing an installation starts with.

Every deployment gets the default rules (scope ``*``); an ML engineer's rule set for one
deployment replaces a default of the same name. Each rule carries a ``summary`` and a
``runbook_url`` (``docs/runbooks.md#<anchor>``); the console path to the evidence comes with
each observation. The routing starts with no receiver: alerts are tracked, nothing is sent
until an administrator sets a configuration (``medops alerts config set``).
"""

from __future__ import annotations

from medops.alerting.schemas import (
    AlertingConfig,
    AlertRule,
    Comparison,
    Inhibition,
    Matcher,
    Route,
    RuleSet,
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


DEFAULT_RULES: tuple[AlertRule, ...] = (
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

DEFAULT_RULE_SET = RuleSet(scope="*", rules=list(DEFAULT_RULES))

# A stale monitoring run or a window without outcomes makes the model-quality alerts of the
# same deployment meaningless: they are muted while it fires.
_DEPENDENT = (
    "AccuracyDrop|DriftDetected|FeatureDrift|CbpeOutsideBand|CalibrationPoor|FairnessOutsideBand"
)
DEFAULT_INHIBITIONS: tuple[Inhibition, ...] = (
    Inhibition(
        source=[Matcher(label="alertname", op="=~", value="MonitoringStale|NoOutcomes")],
        target=[Matcher(label="alertname", op="=~", value=_DEPENDENT)],
        equal=["deployment"],
    ),
)

DEFAULT_CONFIG = AlertingConfig(route=Route(), inhibitions=list(DEFAULT_INHIBITIONS))


def effective_rules(defaults: RuleSet, own: RuleSet | None) -> list[AlertRule]:
    """The rules applied to one deployment: the defaults, each replaced by the deployment's
    rule of the same name, plus the deployment's other rules."""
    mine = {rule.name: rule for rule in own.rules} if own is not None else {}
    merged = [mine.pop(rule.name, rule) for rule in defaults.rules]
    return merged + list(mine.values())
