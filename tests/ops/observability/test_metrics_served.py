"""Every metric the Grafana dashboard and the recording and alerting rules read is one a real
app serves on /metrics once exercised (so a renamed metric or a dashboard typo fails here);
and a real Prometheus scraping what it served evaluates every rule (health ok, a series
recorded) and answers every dashboard query with data. One test: the app is exercised once
per database backend for both halves (the exercise is the slow part)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers.grafana import (
    ALERTING,
    RECORDING,
    dashboard,
    metric_names,
    rule_file,
    substitute,
)
from tests.helpers.prometheus import Exposed, Prometheus, RuleState, scraping, wait_for

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
# Queries that rightly answer nothing on the exercised app, and why.
MAY_BE_EMPTY = {'status="dead"': "no notification is dead (see UNPRODUCED)"}
_EXACT = re.compile(r'(\w+)\s*=\s*"([^"]*)"')


def _missing(read: set[str], exposed: Exposed) -> set[str]:
    return {name for name in read if ":" not in name and name not in exposed.samples}


def test_the_dashboard_and_the_rules_work_on_what_a_live_app_serves(
    exposed: Exposed, tmp_path: Path
) -> None:
    _served(exposed)
    _in_prometheus(exposed, tmp_path)


def _served(exposed: Exposed) -> None:
    """Each expression of each panel names at least one metric, and every metric it names
    has samples on the exercised app's /metrics. The recording rules read only served
    metrics; the alerting rules too, or recorded series the rule files themselves define."""
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


def _evaluated(server: Prometheus) -> list[RuleState] | None:
    rules = server.rules()
    return rules if rules and all(r.lastEvaluation > "2000" for r in rules) else None


def _in_prometheus(exposed: Exposed, tmp_path: Path) -> None:
    """Prometheus scraping the two scrapes of each app, with both rule files loaded."""
    with scraping(tmp_path, [list(s) for s in exposed.scrapes], [RECORDING, ALERTING]) as server:
        rules = wait_for(lambda: _evaluated(server))
        assert rules is not None
        assert {(r.name, r.health, r.lastError) for r in rules} == {
            (r.name, "ok", "") for r in rules
        }
        for rule in rule_file(RECORDING).rules():
            assert rule.record is not None

            def recorded(name: str = rule.record) -> bool:
                answer = server.query(name)
                return answer.data is not None and bool(answer.data.result)

            assert wait_for(recorded, seconds=20), rule.record

        for panel, target in dashboard().targets():
            answer = server.query(substitute(target.expr))
            where = f"{panel.title} {target.ref_id}: {answer.error}"
            assert answer.status == "success", where
            assert answer.data is not None, where
            if not any(marker in target.expr for marker in MAY_BE_EMPTY):
                assert answer.data.result, where
