"""The Grafana dashboard of deploy/grafana: a typed model of the fields it uses, panels that
do not overlap and read the provisioned Prometheus, every expression valid PromQL (promtool),
and the provisioning files that load it."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.grafana import (
    DASHBOARD,
    Dashboard,
    dashboard,
    dashboard_provisioning,
    datasource_provisioning,
    metric_names,
    run_promtool,
    substitute,
)

# The classic dashboard model as Grafana 11.6 and 12 write it.
SCHEMA_VERSION = 41

# What the dashboard must show (panel title -> a metric it reads).
PANELS = {
    "Request rate": "medops_prediction_requests_total",
    "Prediction latency p50 / p95 / p99 (0.5 s SLA line)":
        "medops_prediction_latency_seconds_bucket",
    "HTTP latency of the predict route p50 / p95 / p99 (0.5 s SLA line)":
        "medops_http_request_duration_seconds_bucket",
    "Per-stage latency p95": "medops_prediction_stage_seconds_bucket",
    "Error rate": "medops_prediction_errors_total",
    "Errors by kind": "medops_prediction_errors_total",
    "Shed requests": "medops_prediction_shed_total",
    "Batch sizes": "medops_prediction_batch_size_bucket",
    "Cache hit ratio": "medops_prediction_cache_hits_total",
    "Drift verdicts": "medops_monitoring_window_drifted",
    "Accuracy: estimated (CBPE), realised, baseline": "medops_monitoring_estimated_accuracy",
    "Open alerts": "medops_alerts",
    "Notification outbox": "medops_alert_notifications",
    "Process CPU": "process_cpu_seconds_total",
    "Process memory": "process_resident_memory_bytes",
}  # fmt: skip


def _uid(board: Dashboard, uid: str) -> str:
    """A datasource uid, the ``${datasource}`` variable resolved to its default."""
    if uid in ("${datasource}", "$datasource"):
        current = board.variable("datasource").current
        assert current is not None
        assert isinstance(current.value, str)
        return current.value
    return uid


def test_the_dashboard_is_a_grafana_model_with_unique_panels_on_the_provisioned_source() -> None:
    """uid, schema version, unique panel ids; every panel and query on the provisioned
    Prometheus uid; panels inside the 24-column grid and never overlapping."""
    board = dashboard()
    assert board.uid == "medops-deployment"
    assert board.schema_version == SCHEMA_VERSION
    ids = [p.id for p in board.panels]
    assert len(ids) == len(set(ids))
    (source,) = datasource_provisioning().datasources
    assert source.type == "prometheus"
    charts = [p for p in board.panels if p.type != "row"]
    assert len(charts) >= len(PANELS)
    for panel in charts:
        assert panel.datasource is not None, panel.title
        assert (panel.datasource.type, _uid(board, panel.datasource.uid)) == (
            "prometheus",
            source.uid,
        )
        assert panel.targets, panel.title
        assert panel.description, panel.title
        for target in panel.targets:
            assert _uid(board, target.datasource.uid) == source.uid
        assert len({t.ref_id for t in panel.targets}) == len(panel.targets)
    cells: set[tuple[int, int]] = set()
    for panel in board.panels:
        box = panel.grid_pos
        assert box.x + box.w <= 24, panel.title
        mine = {(x, y) for x in range(box.x, box.x + box.w) for y in range(box.y, box.y + box.h)}
        assert not cells & mine, f"panel {panel.title!r} overlaps another"
        cells |= mine


def test_the_dashboard_has_the_panels_an_operator_needs() -> None:
    """Each required panel exists and reads its metric; the latency panels draw the 0.5 s
    SLA as a red threshold line."""
    board = dashboard()
    by_title = {p.title: p for p in board.panels}
    for title, metric in PANELS.items():
        assert title in by_title, title
        assert any(metric in t.expr for t in by_title[title].targets), title
    for title in (t for t in PANELS if "SLA line" in t):
        panel = by_title[title]
        assert {"0.5", "0.95", "0.99"} <= {
            t.expr.split("(")[1].split(",")[0] for t in panel.targets
        }
        assert panel.field_config is not None
        thresholds = panel.field_config.defaults.thresholds
        assert thresholds is not None
        assert [(s.color, s.value) for s in thresholds.steps][-1] == ("red", 0.5)


def test_the_deployment_variable_lists_the_deployments_that_answer_requests() -> None:
    """``deployment`` comes from the label values of medops_prediction_requests_total (not
    the ``<unknown>`` bucket), allows several and All; every series query filters on it."""
    board = dashboard()
    variable = board.variable("deployment")
    assert variable.type == "query"
    assert variable.definition == "label_values(medops_prediction_requests_total, deployment)"
    assert variable.multi
    assert variable.include_all
    assert variable.model_extra is not None
    assert "<unknown>" in str(variable.model_extra["regex"])
    assert board.variable("datasource").type == "datasource"
    for panel, target in board.targets():
        labelled = {n for n in metric_names(substitute(target.expr)) if _by_deployment(n)}
        assert not labelled or "$deployment" in target.expr, (panel.title, target.ref_id)


def _by_deployment(metric: str) -> bool:
    """Whether the metric has a ``deployment`` label (docs/operations.md, Metrics)."""
    if metric.startswith("medops_prediction_batch_size"):
        return False  # by model and version: a version's batcher serves all its deployments
    return metric.startswith(("medops_prediction_", "medops_monitoring_", "medops_deployment_"))


def test_every_dashboard_expression_is_valid_promql(tmp_path: Path) -> None:
    """Each query (Grafana's variables filled in) as a recording rule: promtool check rules
    accepts them all."""
    board = dashboard()
    lines = ["groups:", "  - name: dashboard", "    rules:"]
    for panel, target in board.targets():
        lines.append(f"      - record: dashboard:panel_{panel.id}:{target.ref_id.lower()}")
        lines.append(f"        expr: '{substitute(target.expr)}'")
    (tmp_path / "dashboard.yml").write_text("\n".join(lines) + "\n")
    checked = run_promtool("check", "rules", "dashboard.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(board.targets())} rules found" in checked.stdout


def test_grafana_provisions_the_dashboard_folder_and_the_datasource() -> None:
    """The dashboards provider reads a folder of files; the datasource is a Prometheus with
    a fixed uid; the dashboard JSON is in the folder deploy/ ships."""
    (provider,) = dashboard_provisioning().providers
    assert provider.type == "file"
    assert str(provider.options["path"]).startswith("/")
    assert DASHBOARD.parent.name == "dashboards"
    (source,) = datasource_provisioning().datasources
    assert (source.type, source.uid, source.access) == ("prometheus", "medops-prometheus", "proxy")
    assert source.url.startswith("http")


# Gauges every replica reads from the shared database at scrape time: the same value on each.
FROM_THE_DATABASE = ("medops_alerts", "medops_alert_notifications", "medops_monitoring_")


def test_gauges_read_from_the_database_are_not_summed_over_replicas() -> None:
    """Three replicas report the same open alert three times: the dashboard takes the max."""
    for panel, target in dashboard().targets():
        names = metric_names(substitute(target.expr))
        if names and all(n.startswith(FROM_THE_DATABASE) for n in names):
            assert "sum" not in target.expr, (panel.title, target.ref_id)
            assert "max" in target.expr, (panel.title, target.ref_id)
