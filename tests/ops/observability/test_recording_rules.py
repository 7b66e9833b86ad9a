"""The recording rules of deploy/prometheus: promtool checks them and runs their unit test;
their names never clash with the exported alerting rules'; the HPA's request-rate series."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.helpers.grafana import ALERTING, RECORDING, RECORDING_TEST, rule_file, run_promtool

HPA_SERIES = "namespace_pod:medops_http_requests:rate2m"


def test_promtool_checks_the_recording_rules(tmp_path: Path) -> None:
    shutil.copy(RECORDING, tmp_path)
    checked = run_promtool("check", "rules", RECORDING.name, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rule_file(RECORDING).rules())} rules found" in checked.stdout


def test_promtool_unit_test_of_the_recording_rules_passes(tmp_path: Path) -> None:
    """The expected values in medops-recording.test.yml (worked out in its comments) are
    what Prometheus computes; every recorded series is tested."""
    shutil.copy(RECORDING, tmp_path)
    shutil.copy(RECORDING_TEST, tmp_path)
    tested = run_promtool("test", "rules", RECORDING_TEST.name, cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
    text = RECORDING_TEST.read_text()
    for rule in rule_file(RECORDING).rules():
        assert f"expr: {rule.record}\n" in text, rule.record


def test_recorded_names_are_unique_and_the_hpa_series_is_per_pod() -> None:
    """No name is recorded twice across the recording and alerting files; the HPA's series
    keeps the namespace and pod labels prometheus-adapter maps to the pod."""
    recorded = [r.record for path in (RECORDING, ALERTING) for r in rule_file(path).rules()]
    named = [n for n in recorded if n is not None]
    assert len(named) == len(set(named))
    (hpa,) = [r for r in rule_file(RECORDING).rules() if r.record == HPA_SERIES]
    assert "sum by (namespace, pod)" in hpa.expr
    assert "[2m]" in hpa.expr  # the window of the adapter's rule
    assert all(probe in hpa.expr for probe in ("/healthz", "/readyz", "/metrics"))
    assert all(r.alert is None for r in rule_file(RECORDING).rules())
