"""Every metric the Grafana dashboard and the recording and alerting rules read is one a real
app serves on /metrics once exercised (so a renamed metric or a dashboard typo fails here)."""

from __future__ import annotations

import re

from tests.helpers.grafana import (
    ALERTING,
    RECORDING,
    dashboard,
    metric_names,
    rule_file,
    substitute,
)
from tests.ops.observability.conftest import Exposed

# Series that only exist once something goes wrong enough: their family is declared on
# /metrics (# TYPE) and the fixture makes them happen, so they must have samples too.
MUST_HAVE_SAMPLES = {
    "medops_prediction_shed_total",
    "medops_deployment_auto_rollbacks_total",
    "medops_prediction_cache_hits_total",
    "medops_monitoring_realized_accuracy",
    "medops_monitoring_estimated_accuracy",
    "medops_alerts",
    "medops_alert_notifications",
}


# Label values a query matches exactly that the exercised app does not produce, and why.
UNPRODUCED = {("status", "dead"): "a notification dead after its last attempt (hours of retries)"}
_EXACT = re.compile(r'(\w+)\s*=\s*"([^"]*)"')


def _missing(read: set[str], exposed: Exposed) -> set[str]:
    return {name for name in read if ":" not in name and name not in exposed.samples}


def test_every_metric_the_dashboard_and_the_rules_read_is_served(exposed: Exposed) -> None:
    """Each expression of each panel names at least one metric, and every metric it names
    has samples on the exercised app's /metrics. The recording rules read only served
    metrics; the alerting rules too, or recorded series the rule files themselves define.
    (One test: the app is exercised once for both.)"""
    read: set[str] = set()
    for panel, target in dashboard().targets():
        names = metric_names(substitute(target.expr))
        assert names, f"panel {panel.id} {target.ref_id} reads no metric"
        read |= names
    assert _missing(read, exposed) == set()
    assert read >= MUST_HAVE_SAMPLES
    assert len(read) >= 25
    exact = {m for _, t in dashboard().targets() for m in _EXACT.findall(t.expr)}
    assert ("route", "/api/v1/deployments/{name}/predict") in exact
    assert exact - exposed.label_values == set(UNPRODUCED)

    recorded = {r.record for path in (RECORDING, ALERTING) for r in rule_file(path).rules()}
    for path in (RECORDING, ALERTING):
        read = {n for r in rule_file(path).rules() for n in metric_names(r.expr)}
        assert read, path
        assert _missing(read, exposed) == set(), path
        assert {n for n in read if ":" in n} <= recorded, path
