"""A monitoring window as one self-contained HTML page (no scripts, no external assets):
verdict and alerts, a bar chart of PSI per feature, every drift test, performance with its
intervals and change against the validation baseline, calibration, fairness per group, and
performance estimated without outcomes (CBPE) reconciled with the realized values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from html import escape
from typing import Any

from medops.core.svg import Bar, bar_chart
from medops.monitoring.drift_tests import BY_NAME, label_of
from medops.monitoring.results import (
    DriftTestResult,
    Estimated,
    Reconciliation,
    Stat,
    WindowDocument,
    WindowSummary,
)

# The page's one style sheet, a constant: allowed by its hash in the answer's
# Content-Security-Policy (api/headers.py).
STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}"
    "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;"
    "text-align:left}.bad{background:#fde2e1}.warn{background:#fff4ce}"
)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return escape(str(value))


def _table(headers: list[str], rows: list[list[Any]], marks: list[str] | None = None) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    classes = marks or [""] * len(rows)
    cells = ["".join(f"<td>{_fmt(c)}</td>" for c in row) for row in rows]
    body = "".join(f'<tr class="{classes[i]}">{cells[i]}</tr>' for i in range(len(rows)))
    return f"<table><tr>{head}</tr>{body}</table>"


def _psi_chart(features: Mapping[str, Sequence[DriftTestResult] | None]) -> str:
    """Horizontal bars of PSI per feature, with PSI's default threshold drawn."""
    bars = []
    for name, results in features.items():
        psi = next((r for r in results or () if r.test == "psi"), None)
        if psi is not None and psi.statistic is not None:
            bars.append(Bar(name, float(psi.statistic), psi.drifted))
    limit = BY_NAME["psi"].defaults["numeric"]
    return bar_chart(bars, limit=limit or 0.0, name=label_of("psi"))


def window_title(document: WindowSummary) -> str:
    """A window as a person reads it: deployment, version, kind and its real bounds (a count
    window's first and last prediction, not the half-open end a microsecond later)."""
    start = datetime.fromisoformat(document.start)
    end = datetime.fromisoformat(document.end)
    head = f"{document.deployment} v{document.version} {document.window}"
    kind = document.window
    if kind.startswith("count:"):
        size, number = int(kind.split(":", 1)[1]), int(document.sequence or 0)
        last = end - timedelta(microseconds=1)
        return (
            f"{head} window #{number + 1} (predictions {number * size + 1} to "
            f"{(number + 1) * size}), logged {start:%Y-%m-%d %H:%M:%S} to "
            f"{last:%Y-%m-%d %H:%M:%S} UTC"
        )
    return f"{head} window {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"


_FAIRNESS_METRICS = ("accuracy", "sensitivity", "specificity", "precision")


def render(document: WindowDocument) -> str:
    """The page for one stored window (``MonitoringService.document``)."""
    result = document.result
    title = window_title(document)
    alerts = "".join(f"<li>{escape(a)}</li>" for a in document.alerts) or "<li>none</li>"
    drift_rows: list[list[Any]] = []
    marks = []
    for name, results in result.features.items():
        if results is None:
            drift_rows.append([name, "missing from the log", None, None, None, None])
            marks.append("warn")
            continue
        for r in results:
            drift_rows.append([name, r.test, r.statistic, r.p_value, r.threshold, r.status])
            marks.append("bad" if r.drifted else "")
    performance = result.performance
    perf_rows = [
        [m, v.value, v.ci_low, v.ci_high, v.baseline, v.change]
        for m, v in performance.metrics.items()
    ]
    calibration = performance.calibration
    fairness_rows = []
    for attribute in result.fairness.attributes if result.fairness else ():
        for group in attribute.groups:
            metrics = group.metrics or {}
            fairness_rows.append(
                [attribute.attribute, group.group, group.n, group.status]
                + [metrics[m].ratio if m in metrics else None for m in _FAIRNESS_METRICS]
            )
    multivariate = result.multivariate
    estimated = _estimated(result.estimated, result.reconciliation)
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>"
        f"<p>Rows: {result.rows}, with outcomes: {result.labelled}. Status: "
        f"{escape(result.status)}. Verdict: <strong>{escape(document.verdict)}</strong>.</p>"
        f"<h2>Alerts</h2><ul>{alerts}</ul>"
        f"<h2>Input drift</h2>{_psi_chart(result.features)}"
        + _table(
            ["feature", "test", "statistic", "p-value", "threshold", "status"], drift_rows, marks
        )
        + f"<p>Multivariate (PCA reconstruction): {_fmt(multivariate.statistic)} "
        f"against band {_fmt(_band(multivariate.threshold))}, status "
        f"{escape(str(multivariate.status))}.</p>"
        + estimated
        + "<h2>Performance</h2>"
        + _table(["metric", "value", "ci low", "ci high", "baseline", "change"], perf_rows)
        + f"<p>Calibration: ECE {_fmt(calibration.ece.value)}, slope "
        f"{_fmt(calibration.slope)}, intercept {_fmt(calibration.intercept)}.</p>"
        + "<h2>Fairness (ratio to the reference group)</h2>"
        + _table(
            [
                "attribute",
                "group",
                "n",
                "status",
                "accuracy",
                "sensitivity",
                "specificity",
                "precision",
            ],
            fairness_rows,
        )
        + "</body></html>"
    )


def _band(threshold: tuple[Stat, ...] | None) -> list[Stat] | None:
    """The multivariate band as the page has always shown it (a list)."""
    return None if threshold is None else list(threshold)


def _estimated(estimated: Estimated | None, reconciled: Reconciliation | None) -> str:
    """CBPE's estimates with bands and reference range, and their reconciliation."""
    if estimated is None or estimated.status == "not-available":
        reason = (estimated.reason if estimated else None) or "no estimate in this window"
        return f"<h2>Estimated performance (CBPE)</h2><p>{escape(reason)}</p>"
    matched = reconciled.metrics if reconciled else {}
    rows, marks = [], []
    for name, item in estimated.metrics.items():
        check = matched.get(name)
        realized, within = (check.realized, check.within_band) if check else (None, None)
        rows.append(
            [name, item.value, item.lower, item.upper, item.limit_lower, item.limit_upper,
             realized, within]
        )  # fmt: skip
        marks.append("bad" if item.alert or within is False else "")
    coverage = (
        f" Realized on {reconciled.labelled} rows with outcomes "
        f"({reconciled.coverage:.0%} of the window)."
        if reconciled
        else " No realized values yet: too few outcomes have arrived."
    )
    return (
        "<h2>Estimated performance (CBPE)</h2>"
        f"<p>Estimated from the scores of {estimated.rows} rows"
        f"{' after isotonic calibration' if estimated.calibrated else ''}.{coverage}</p>"
        + _table(
            [
                "metric",
                "estimate",
                "band low",
                "band high",
                "reference low",
                "reference high",
                "realized",
                "realized in band",
            ],
            rows,
            marks,
        )
    )
