"""A monitoring window as one self-contained HTML page (no scripts, no external assets):
verdict and alerts, a bar chart of PSI per feature, every drift test, performance with its
intervals and change against the validation baseline, calibration, fairness per group, and
performance estimated without outcomes (CBPE) reconciled with the realized values."""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape
from typing import Any

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


def _psi_chart(features: dict[str, Any]) -> str:
    """Horizontal bars of PSI per feature, with the 0.2 default threshold drawn."""
    bars = []
    for name, results in features.items():
        psi = next((r for r in results or [] if r["test"] == "psi"), None)
        if psi is not None and psi["statistic"] is not None:
            bars.append((name, float(psi["statistic"]), bool(psi["drifted"])))
    if not bars:
        return ""
    top = max(0.3, *(v for _, v, _ in bars))
    width, row = 400.0, 18
    parts = []
    for i, (name, value, drifted) in enumerate(bars):
        y = i * row
        colour = "#c0392b" if drifted else "#2e86c1"
        parts.append(
            f'<text x="0" y="{y + 13}" font-size="12">{escape(name)}</text>'
            f'<rect x="120" y="{y + 3}" width="{value / top * width:.1f}" height="12" '
            f'fill="{colour}"><title>PSI {value:.4f}</title></rect>'
        )
    limit = 120 + 0.2 / top * width
    height = len(bars) * row
    parts.append(
        f'<line x1="{limit:.1f}" x2="{limit:.1f}" y1="0" y2="{height}" stroke="#555" '
        'stroke-dasharray="4"/>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{120 + width + 20}" height="{height}" '
        f'role="img" aria-label="PSI per feature">{"".join(parts)}</svg>'
    )


def window_title(document: dict[str, Any]) -> str:
    """A window as a person reads it: deployment, version, kind and its real bounds (a count
    window's first and last prediction, not the half-open end a microsecond later)."""
    start = datetime.fromisoformat(str(document["start"]))
    end = datetime.fromisoformat(str(document["end"]))
    head = f"{document['deployment']} v{document['version']} {document['window']}"
    kind = str(document["window"])
    if kind.startswith("count:"):
        size, number = int(kind.split(":", 1)[1]), int(document.get("sequence") or 0)
        last = end - timedelta(microseconds=1)
        return (
            f"{head} window #{number + 1} (predictions {number * size + 1} to "
            f"{(number + 1) * size}), logged {start:%Y-%m-%d %H:%M:%S} to "
            f"{last:%Y-%m-%d %H:%M:%S} UTC"
        )
    return f"{head} window {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"


def render(document: dict[str, Any]) -> str:
    """The page for one stored window (``MonitoringService.document``)."""
    result = document["result"]
    title = window_title(document)
    alerts = "".join(f"<li>{escape(a)}</li>" for a in document["alerts"]) or "<li>none</li>"
    drift_rows, marks = [], []
    for name, results in result["features"].items():
        if results is None:
            drift_rows.append([name, "missing from the log", None, None, None, None])
            marks.append("warn")
            continue
        for r in results:
            drift_rows.append(
                [name, r["test"], r["statistic"], r["p_value"], r["threshold"], r["status"]]
            )
            marks.append("bad" if r["drifted"] else "")
    performance = result["performance"]
    perf_rows = [
        [m, v["value"], v["ci_low"], v["ci_high"], v["baseline"], v["change"]]
        for m, v in performance["metrics"].items()
    ]
    calibration = performance["calibration"]
    fairness_rows = []
    for attribute in (result.get("fairness") or {}).get("attributes", []):
        for group in attribute["groups"]:
            metrics = group.get("metrics") or {}
            fairness_rows.append(
                [attribute["attribute"], group["group"], group["n"], group["status"]]
                + [
                    None if m not in metrics else metrics[m]["ratio"]
                    for m in ("accuracy", "sensitivity", "specificity", "precision")
                ]
            )
    multivariate = result["multivariate"]
    estimated = _estimated(result.get("estimated"), result.get("reconciliation"))
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>"
        f"<p>Rows: {result['rows']}, with outcomes: {result['labelled']}. Status: "
        f"{escape(result['status'])}. Verdict: <strong>{escape(document['verdict'])}</strong>.</p>"
        f"<h2>Alerts</h2><ul>{alerts}</ul>"
        f"<h2>Input drift</h2>{_psi_chart(result['features'])}"
        + _table(
            ["feature", "test", "statistic", "p-value", "threshold", "status"], drift_rows, marks
        )
        + f"<p>Multivariate (PCA reconstruction): {_fmt(multivariate.get('statistic'))} "
        f"against band {_fmt(multivariate.get('threshold'))}, status "
        f"{escape(str(multivariate.get('status')))}.</p>"
        + estimated
        + "<h2>Performance</h2>"
        + _table(["metric", "value", "ci low", "ci high", "baseline", "change"], perf_rows)
        + f"<p>Calibration: ECE {_fmt(calibration['ece']['value'])}, slope "
        f"{_fmt(calibration['slope'])}, intercept {_fmt(calibration['intercept'])}.</p>"
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


def _estimated(estimated: dict[str, Any] | None, reconciled: dict[str, Any] | None) -> str:
    """CBPE's estimates with bands and reference range, and their reconciliation."""
    if not estimated or estimated.get("status") == "not-available":
        reason = (estimated or {}).get("reason", "no estimate in this window")
        return f"<h2>Estimated performance (CBPE)</h2><p>{escape(reason)}</p>"
    matched = (reconciled or {}).get("metrics", {})
    rows, marks = [], []
    for name, item in estimated["metrics"].items():
        check = matched.get(name, {})
        rows.append(
            [name, item["value"], item["lower"], item["upper"], item["limit_lower"],
             item["limit_upper"], check.get("realized"), check.get("within_band")]
        )  # fmt: skip
        marks.append("bad" if item["alert"] or check.get("within_band") is False else "")
    coverage = (
        f" Realized on {reconciled['labelled']} rows with outcomes "
        f"({reconciled['coverage']:.0%} of the window)."
        if reconciled
        else " No realized values yet: too few outcomes have arrived."
    )
    return (
        "<h2>Estimated performance (CBPE)</h2>"
        f"<p>Estimated from the scores of {estimated['rows']} rows"
        f"{' after isotonic calibration' if estimated['calibrated'] else ''}.{coverage}</p>"
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
