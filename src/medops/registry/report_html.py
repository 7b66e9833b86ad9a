"""A validation report as one standalone HTML5 document.

The page has no JavaScript and loads nothing: styles are inline and plots are inline SVG
(``medops.core.svg``). Every string taken from the report or the caller's metadata is
passed through ``html.escape``, so a group label or model name cannot inject markup.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from medops.core.metric_names import REPORT_METRICS as METRIC_NAMES
from medops.core.svg import ForestRow, curve_plot, esc, forest_plot, reliability_plot
from medops.registry.validation_report import (
    Confusion,
    GroupMetricValue,
    MetricValue,
    ReportDocument,
    Subgroup,
    ThresholdRow,
)

METRIC_LABELS: dict[str, str] = {
    "auroc": "AUROC",
    "auprc": "AUPRC (average precision)",
    "accuracy": "Accuracy",
    "sensitivity": "Sensitivity (recall)",
    "specificity": "Specificity",
    "ppv": "PPV (precision)",
    "npv": "NPV",
    "f1": "F1",
    "brier": "Brier score",
    "ece": "Expected calibration error",
}
FOREST_METRICS: tuple[str, ...] = ("auroc", "sensitivity")
THRESHOLD_COLUMNS: tuple[str, ...] = (
    "sensitivity",
    "specificity",
    "ppv",
    "npv",
    "f1",
    "accuracy",
    "flagged_fraction",
)
UNDEFINED = "—"

# The page's one style sheet, a constant: allowed by its hash in the answer's
# Content-Security-Policy (api/headers.py).
STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:72rem;
color:#1b1f24;padding:0 1rem;line-height:1.4}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;margin:.5rem 0;font-size:.85rem}
th,td{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:right;vertical-align:top}
th{background:#f6f8fa}td.text,th.text{text-align:left}
.scroll{overflow-x:auto}.plots{display:flex;flex-wrap:wrap;gap:1rem}
.censored{color:#6e7781;font-style:italic}.note{fill:#6e7781;font-size:11px;font-style:italic}
svg{background:#fff;border:1px solid #d0d7de}
.frame{fill:none;stroke:#8c959f}.axis{stroke:#57606a}
.tick{font-size:10px;fill:#24292f}.axis-label{font-size:11px;fill:#24292f}
.plot-title{font-size:12px;font-weight:600;fill:#24292f}
.curve{fill:none;stroke:#0969da;stroke-width:2}
.reference{fill:none;stroke:#8c959f;stroke-dasharray:4 3}
.bar{fill:#d0d7de}.point{fill:#0969da;fill-opacity:.8}.count{font-size:9px;fill:#57606a}
.whisker{stroke:#24292f;stroke-width:1.5}.estimate{fill:#0969da}
.overall{stroke:#cf222e;stroke-dasharray:5 3;stroke-width:1.5}
"""


def _fmt(value: object, digits: int = 3) -> str:
    if value is None:
        return UNDEFINED
    if isinstance(value, bool) or not isinstance(value, int | float):
        return esc(value)
    return esc(f"{value:.{digits}f}")


def _interval(stats: MetricValue | GroupMetricValue | None) -> str:
    if stats is None or stats.ci_low is None or stats.ci_high is None:
        return UNDEFINED
    method = stats.ci_method
    if method == "upper-bound":
        return f"at most {_fmt(stats.ci_high)}"
    note = " (widened to the estimate)" if isinstance(method, str) and "widened" in method else ""
    return f"{_fmt(stats.ci_low)} to {_fmt(stats.ci_high)}{note}"


def _gap(value: object) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return UNDEFINED
    return esc(f"{value:+.3f}")


def _label(name: str) -> str:
    return esc(METRIC_LABELS.get(name, name))


def _meta_table(meta: Mapping[str, str]) -> str:
    rows = "".join(
        f'<tr><th class="text">{esc(key)}</th><td class="text">{esc(value)}</td></tr>'
        for key, value in meta.items()
    )
    return f'<table class="meta">{rows}</table>'


def _summary(report: ReportDocument) -> str:
    bootstrap = report.bootstrap
    return (
        f"<p>n = {esc(report.n)}, positives = {esc(report.positives)} "
        f"(prevalence {_fmt(report.prevalence)}), operating threshold "
        f"{esc(report.threshold)} (predicted positive when score ≥ threshold). "
        f"Intervals: {esc(bootstrap.method)} bootstrap, "
        f"{esc(bootstrap.n)} resamples, confidence {esc(bootstrap.confidence)}, "
        f"seed {esc(bootstrap.seed)}"
        + (
            "; BCa (bias-corrected and accelerated) for every metric but the expected "
            "calibration error, whose interval is a one-sided upper bound (it is biased "
            "upwards under resampling)"
            if bootstrap.method == "bca"
            else ""
        )
        + f". {UNDEFINED} marks an undefined value.</p>"
    )


def _metrics_table(metrics: Mapping[str, MetricValue]) -> str:
    rows = "".join(
        f'<tr><th class="text">{_label(name)}</th><td>{_fmt(stats.value)}</td>'
        f"<td>{_interval(stats)}</td></tr>"
        for name, stats in metrics.items()
    )
    head = '<tr><th class="text">Metric</th><th>Value</th><th>Confidence interval</th></tr>'
    return f"<table>{head}{rows}</table>"


def _confusion_table(confusion: Confusion) -> str:
    return (
        "<table><tr><th></th><th>Predicted positive</th><th>Predicted negative</th></tr>"
        f'<tr><th class="text">Actual positive</th><td>TP {esc(confusion.tp)}</td>'
        f"<td>FN {esc(confusion.fn)}</td></tr>"
        f'<tr><th class="text">Actual negative</th><td>FP {esc(confusion.fp)}</td>'
        f"<td>TN {esc(confusion.tn)}</td></tr></table>"
    )


def _plots(report: ReportDocument) -> str:
    roc, pr, calibration = report.roc_curve, report.pr_curve, report.calibration
    plots = [
        curve_plot(
            roc.fpr,
            roc.tpr,
            title=f"ROC curve (AUROC {_fmt(report.value('auroc'))})",
            x_label="False positive rate (1 - specificity)",
            y_label="True positive rate (sensitivity)",
            diagonal=True,
        ),
        curve_plot(
            pr.recall,
            pr.precision,
            title=f"Precision-recall curve (AP {_fmt(report.value('auprc'))})",
            x_label="Recall (sensitivity)",
            y_label="Precision (PPV)",
            baseline=report.prevalence,
            step=True,
        ),
        reliability_plot(
            calibration.bins, title=f"Reliability diagram (ECE {_fmt(calibration.ece)})"
        ),
    ]
    return f'<div class="plots">{"".join(plots)}</div>'


def _censored_note(group: Subgroup) -> str:
    return f"censored ({group.reason or 'too few rows'})"


def _forest(report: ReportDocument, metric: str) -> str:
    rows: list[ForestRow] = []
    for group in report.subgroups:
        label = f"{group.attribute}: {group.group} (n={group.n})"
        if group.censored:
            rows.append(ForestRow(label, None, None, None, _censored_note(group)))
            continue
        stats = group.metrics.get(metric)
        if stats is None:
            rows.append(ForestRow(label, None, None, None))
            continue
        rows.append(ForestRow(label, stats.value, stats.ci_low, stats.ci_high))
    return forest_plot(rows, overall=report.value(metric), title=METRIC_LABELS.get(metric, metric))


def _subgroup_cells(group: Subgroup, names: Sequence[str]) -> str:
    if group.censored:
        return f'<td colspan="{len(names)}" class="text censored">{esc(_censored_note(group))}</td>'
    cells = []
    for name in names:
        stats = group.metrics.get(name)
        value, gap = (None, None) if stats is None else (stats.value, stats.gap)
        cells.append(
            f"<td>{_fmt(value)}<br><small>{_interval(stats)}</small>"
            f"<br><small>gap {_gap(gap)}</small></td>"
        )
    return "".join(cells)


def _subgroup_table(report: ReportDocument) -> str:
    groups = report.subgroups
    if not groups:
        return "<p>No subgroup attributes were given.</p>"
    names = [name for name in METRIC_NAMES if name in report.metrics]
    head = (
        '<tr><th class="text">Attribute</th><th class="text">Group</th><th>n</th>'
        "<th>Positives</th><th>Prevalence</th>" + "".join(f"<th>{_label(n)}</th>" for n in names)
    )
    rows = "".join(
        f'<tr><td class="text">{esc(g.attribute)}</td>'
        f'<td class="text">{esc(g.group)}</td><td>{esc(g.n)}</td>'
        f"<td>{esc(g.positives)}</td><td>{_fmt(g.prevalence)}</td>"
        f"{_subgroup_cells(g, names)}</tr>"
        for g in groups
    )
    note = "<p>Each cell: value, confidence interval, and gap (group value - overall value).</p>"
    return f'{note}<div class="scroll"><table>{head}</tr>{rows}</table></div>'


def _threshold_cells(row: ThresholdRow) -> list[object]:
    return [
        row.sensitivity,
        row.specificity,
        row.ppv,
        row.npv,
        row.f1,
        row.accuracy,
        row.flagged_fraction,
    ]  # fmt: skip  -- the order of THRESHOLD_COLUMNS


def _threshold_table(report: ReportDocument) -> str:
    head = "<tr><th>Threshold</th>" + "".join(
        f"<th>{_label(name) if name in METRIC_LABELS else 'Flagged fraction'}</th>"
        for name in THRESHOLD_COLUMNS
    )
    rows = "".join(
        f"<tr><td>{_fmt(row.threshold, 2)}</td>"
        + "".join(f"<td>{_fmt(value)}</td>" for value in _threshold_cells(row))
        + "</tr>"
        for row in report.thresholds
    )
    return f'<div class="scroll"><table>{head}</tr>{rows}</table></div>'


def report_body(report: ReportDocument, meta: Mapping[str, str]) -> str:
    """The report's sections (no title, no document around them): the standalone file and
    the console's version page show the same markup."""
    forests = "".join(_forest(report, metric) for metric in FOREST_METRICS)
    sections = [
        _meta_table(meta),
        "<h2>Summary</h2>",
        _summary(report),
        "<h2>Metrics</h2>",
        _metrics_table(report.metrics),
        "<h2>Confusion matrix at the operating threshold</h2>",
        _confusion_table(report.confusion),
        "<h2>Discrimination and calibration</h2>",
        _plots(report),
        "<h2>Subgroups</h2>",
        f'<div class="plots">{forests}</div>' if report.subgroups else "",
        _subgroup_table(report),
        "<h2>Metrics by threshold</h2>",
        _threshold_table(report),
    ]
    return "".join(sections)


def render_report_html(report: ReportDocument, *, title: str, meta: Mapping[str, str]) -> str:
    """The report as a complete, self-contained HTML5 document (no scripts, no fetches)."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head>"
        f"<body><h1>{esc(title)}</h1>{report_body(report, meta)}</body></html>\n"
    )
