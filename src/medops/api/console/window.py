"""One monitoring window as a page body: what the console shows at
``/deployments/{name}/windows/{kind}/{version}/{sequence}`` and what ``medops monitor report``
writes (``standalone``: the same body in a self-contained file, the console's style sheet
inlined, no script, nothing from another origin).

The body reads a stored ``WindowDocument`` only, so a window is shown as it was judged:
its bounds (a count window's first and last prediction, not the half-open end), verdict and
alerts; per feature every drift test with the configured threshold *and* the effective one
the verdict used (a binned test's threshold is raised to three times its noise floor in a
small window, drift.py), and the reference-against-window distribution the binned tests
compared; the score and outcome distributions; realized performance with intervals and the
validation baseline; the reliability curve; the CBPE estimate against its reference range
and the realized value; fairness ratios against their bands; the multivariate error against
its band; and the configuration applied. Every chart's numbers are also a table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from medops.api.console.layout import badge, cell, definitions, fmt, notice, section, table
from medops.api.console.window_charts import (
    Bins,
    Calibrated,
    Row,
    bin_labels,
    chart,
    distribution,
    ranges,
    reliability,
)
from medops.core.svg import esc
from medops.monitoring.drift_tests import BY_NAME, NOISE_FACTOR, label_of
from medops.monitoring.results import (
    DriftTestResult,
    Stat,
    WindowDocument,
    WindowResult,
    WindowSummary,
    as_float,
)


def window_href(summary: WindowSummary) -> str:
    """The console address of a window (its kind as stored: ``count:500`` keeps its colon,
    which a path segment may hold)."""
    return (
        f"/deployments/{summary.deployment}/windows/{summary.window}/{summary.version}/"
        f"{summary.sequence if summary.sequence is not None else 0}"
    )


def bounds(summary: WindowSummary) -> tuple[datetime, datetime]:
    """The window's real first and last instants: a window is ``[start, end)``, so its last
    instant is a microsecond before ``end``."""
    start = datetime.fromisoformat(summary.start)
    end = datetime.fromisoformat(summary.end)
    return start, end - timedelta(microseconds=1)


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def stat(value: Stat | None) -> str:
    """A statistic or p-value for a cell: tiny values in scientific notation."""
    number = as_float(value)
    if number is None:
        return "—"
    if math.isfinite(number) and number != 0 and abs(number) < 1e-3:
        return esc(f"{number:.2e}")
    return cell(number, 4)


@dataclass(frozen=True)
class Neighbours:
    """The windows before and after this one in its series (same kind and version)."""

    previous: WindowSummary | None = None
    next: WindowSummary | None = None


def render(document: WindowDocument, *, neighbours: Neighbours | None = None) -> str:
    """The page body of one window (markup; every stored value escaped)."""
    result = document.result
    parts = [
        _summary(document),
        _navigation(neighbours) if neighbours else "",
        _features(result),
        _prediction(result),
        _labels(result),
        _performance(result),
        _calibration(result),
        _estimated(result),
        _fairness(result),
        _multivariate(result),
        _configuration(result),
    ]
    return "".join(parts)


# --- summary ------------------------------------------------------------------------------


def _summary(document: WindowDocument) -> str:
    first, last = bounds(document)
    counted = document.window.startswith("count:")
    alerts = (
        "<ul>" + "".join(f"<li>{esc(a)}</li>" for a in document.alerts) + "</ul>"
        if document.alerts
        else "none"
    )
    facts = definitions(
        [
            ("Deployment", esc(document.deployment)),
            ("Model", esc(f"{document.model} v{document.version}")),
            ("Window kind", esc(document.window)),
            ("Sequence", cell(document.sequence)),
            ("First prediction" if counted else "Start", esc(_utc(first))),
            ("Last prediction" if counted else "End (last instant)", esc(_utc(last))),
            ("Rows", cell(document.rows)),
            ("Rows with outcome", cell(document.labelled)),
            ("Status", badge(document.status)),
            ("Verdict", badge(document.verdict)),
            ("Alerts", alerts),
        ]
    )
    return section("Window", facts, anchor="window")


def _navigation(neighbours: Neighbours) -> str:
    links = []
    for rel, label, found in (
        ("prev", "Previous window", neighbours.previous),
        ("next", "Next window", neighbours.next),
    ):
        if found is None:
            links.append(f'<li><span class="empty">{label}: none</span></li>')
        else:
            text = f"{label}: #{found.sequence} ({found.start[:16]}, {found.verdict})"
            links.append(
                f'<li><a rel="{rel}" href="{esc(window_href(found))}">{esc(text)}</a></li>'
            )
    return (
        f'<nav class="series" aria-label="Windows of this series"><ul>{"".join(links)}</ul></nav>'
    )


# --- drift --------------------------------------------------------------------------------


def _effective(result: DriftTestResult) -> str:
    """The threshold the verdict used, with the noise floor that set it, if any."""
    if result.threshold is None:
        return "not judged"
    floor = result.parameters.get("noise_floor")
    effective = result.parameters.get("effective_threshold")
    if floor is None or effective is None:
        return stat(result.threshold)
    configured = as_float(result.threshold) or 0.0
    raised = float(effective) > configured
    why = (
        f"{NOISE_FACTOR:g} × noise floor {float(floor):.4g}"
        if raised
        else f"noise floor {float(floor):.4g}"
    )
    return f"{stat(effective)} <small>({esc(why)})</small>"


def _verdict_of(result: DriftTestResult) -> str:
    if result.status != "ok":
        return badge(result.status)
    if result.threshold is None:
        return badge("reported only", "muted")
    return badge("drift", "bad") if result.drifted else badge("no drift", "ok")


def _tests_table(results: Sequence[DriftTestResult], adjusted: dict[str, float]) -> str:
    rows = []
    for r in results:
        key = f"{r.feature}:{r.test}"
        rows.append(
            [
                esc(label_of(r.test)),
                stat(r.statistic),
                stat(r.p_value),
                stat(adjusted[key]) if key in adjusted else "—",
                stat(r.threshold) if r.threshold is not None else "none",
                _effective(r),
                _verdict_of(r),
            ]
        )
    return table(
        ["test", "statistic", "p-value", "adjusted p-value", "configured threshold",
         "effective threshold", "result"],
        rows,
        numeric=(1, 2, 3, 4),
    )  # fmt: skip


def bins_of(results: Sequence[DriftTestResult]) -> tuple[Bins, tuple[str, ...], bool] | None:
    """The reference and current counts the binned tests compared: (bins, unseen
    categories, categorical), or None when no test holds counts (an empty window)."""
    for r in results:
        p = r.parameters
        if "categories" in p and p.get("reference_counts") is not None:
            labels = tuple(str(c) for c in p["categories"])
            unseen = tuple(str(c) for c in p.get("unseen_categories") or ())
            bins = Bins(labels, tuple(p["reference_counts"]), tuple(p["current_counts"]))
            return bins, unseen, True
    for r in results:
        p = r.parameters
        if "edges" in p and p.get("reference_counts") is not None:
            edges = [float(e) for e in p["edges"]]
            bins = Bins(bin_labels(edges), tuple(p["reference_counts"]), tuple(p["current_counts"]))
            return bins, (), False
    return None


def _distribution(results: Sequence[DriftTestResult], name: str, what: str) -> str:
    found = bins_of(results)
    if found is None:
        return notice(f"No distribution to compare: the window holds no {what} values.", "info")
    bins, unseen, categorical = found
    if categorical:
        x_label = f"{what} category"
        caption = (
            f"Share of rows per category of {what}, reference against this window"
            + (f"; categories not in the reference: {', '.join(unseen)}" if unseen else "")
            + "."
        )
    else:
        x_label = f"{what} (bins: reference deciles, in the feature's own units)"
        caption = (
            f"Share of rows per bin of {what}: the bins the binned tests (PSI, KL, "
            "Jensen-Shannon) compared, cut at the reference quantiles; the first and last "
            "are open-ended."
        )
    return distribution(
        bins, title=f"{name}: reference and this window", x_label=x_label, caption=caption,
        unseen=unseen,
    )  # fmt: skip


def _feature_block(
    name: str, results: Sequence[DriftTestResult] | None, result: WindowResult
) -> str:
    heading = f'<h3 id="feature-{esc(name)}">{esc(name)} '
    if results is None:
        return (
            heading
            + badge("missing", "warn")
            + "</h3>"
            + notice(f"{name} is missing from the logged predictions of this window.", "warn")
        )
    drifted = name in result.dataset.drifted_features
    heading += (badge("drift", "bad") if drifted else badge("no drift", "ok")) + "</h3>"
    tests = _tests_table(results, result.dataset.adjusted_p_values)
    return (
        f'{heading}<div class="grid2 window-feature"><div>{tests}</div><div>'
        + _distribution(results, name, name)
        + "</div></div>"
    )


def _features(result: WindowResult) -> str:
    dataset = result.dataset
    drifted = ", ".join(dataset.drifted_features) or "none"
    intro = (
        f"<p>Drifted features: {esc(drifted)} (share {cell(dataset.share, 2)}; multiple-testing "
        f"correction: {esc(dataset.correction or 'none')}). A binned test (PSI, KL, "
        "Jensen-Shannon) is judged against its <em>effective</em> threshold: the configured "
        f"one, raised to {NOISE_FACTOR:g} × the value chance alone gives between two samples "
        "of these sizes (its noise floor) when that is larger.</p>"
    )
    blocks = [_feature_block(n, r, result) for n, r in result.features.items()]
    return section("Input drift per feature", intro + "".join(blocks), anchor="features")


def _prediction(result: WindowResult) -> str:
    if not result.prediction:
        return section("Score distribution", notice("No score drift recorded.", "info"))
    body = _tests_table(result.prediction, {}) + _distribution(
        result.prediction, "Predicted score", "predicted score"
    )
    return section("Score distribution (prediction drift)", body, anchor="scores")


def _labels(result: WindowResult) -> str:
    if result.labels is None:
        return ""
    body = _tests_table(result.labels, {}) + _distribution(result.labels, "Outcome", "outcome")
    return section("Outcome distribution (label drift)", body, anchor="labels")


# --- performance --------------------------------------------------------------------------


def _number(value: float | int | None) -> float | None:
    return None if value is None else float(value)


def _performance(result: WindowResult) -> str:
    performance = result.performance
    status = (
        f"<p>Status: {badge(performance.status)}"
        + (f" ({esc(performance.reason)})" if performance.reason else "")
        + f"; {cell(performance.n)} rows with outcome"
        + (
            f", prevalence {cell(performance.prevalence)}"
            if performance.prevalence is not None
            else ""
        )
        + (
            f", decision threshold {cell(performance.threshold, 2)}"
            if performance.threshold is not None
            else ""
        )
        + ".</p>"
    )
    boot = performance.bootstrap
    level = f"{boot.confidence:.0%} interval ({boot.method})" if boot else "interval"
    rows, chart_rows = [], []
    for name, m in performance.metrics.items():
        rows.append(
            [esc(name), cell(m.value), cell(m.ci_low), cell(m.ci_high), cell(m.baseline),
             cell(m.change)]
        )  # fmt: skip
        chart_rows.append(
            Row(name, _number(m.value), _number(m.ci_low), _number(m.ci_high),
                marker=_number(m.baseline), note="no value")
        )  # fmt: skip
    numbers = table(
        ["metric", "value", "interval low", "interval high", "validation baseline", "change"],
        rows,
        numeric=(1, 2, 3, 4, 5),
    )
    drawn = ranges(
        chart_rows,
        title="Realized performance",
        x_label="Metric value (0 to 1)",
        legend=[("point", "this window"), ("interval", level), ("marker", "validation baseline")],
        scale=(0.0, 1.0),
    )
    body = status + chart(
        drawn, f"Each metric with its {level} and the validation baseline.", numbers
    )
    if performance.confusion is not None:
        c = performance.confusion
        body += definitions(
            [("True positives", cell(c.tp)), ("False positives", cell(c.fp)),
             ("True negatives", cell(c.tn)), ("False negatives", cell(c.fn))]
        )  # fmt: skip
    return section("Performance", body, anchor="performance")


def _calibration(result: WindowResult) -> str:
    calibration = result.performance.calibration
    ece = calibration.ece
    facts = definitions(
        [
            ("Expected calibration error", cell(ece.value)),
            ("ECE interval", f"{cell(ece.ci_low)} to {cell(ece.ci_high)}"),
            ("ECE baseline", cell(ece.baseline)),
            ("Calibration slope", stat(calibration.slope)),
            ("Calibration intercept", stat(calibration.intercept)),
        ]
    )
    bins = [
        Calibrated(float(b.lower), float(b.upper), b.count, _number(b.mean_predicted),
                   _number(b.observed_rate))
        for b in calibration.bins
    ]  # fmt: skip
    drawn = (
        reliability(
            bins,
            title="Reliability curve",
            caption="Observed outcome rate against the mean predicted probability of each "
            "score bin; on the diagonal a score means what it says.",
        )
        if bins
        else notice("No calibration bins in this window.", "info")
    )
    return section("Calibration", facts + drawn, anchor="calibration")


def _estimated(result: WindowResult) -> str:
    estimated = result.estimated
    if estimated is None or estimated.status == "not-available":
        reason = (estimated.reason if estimated else None) or "no estimate in this window"
        return section("Estimated performance (CBPE)", notice(reason, "info"), anchor="cbpe")
    reconciled = result.reconciliation
    matched = reconciled.metrics if reconciled else {}
    rows, chart_rows = [], []
    for name, item in estimated.metrics.items():
        check = matched.get(name)
        realized = check.realized if check else None
        within = check.within_band if check else None
        rows.append(
            [esc(name), cell(item.value), cell(item.lower), cell(item.upper),
             cell(item.limit_lower), cell(item.limit_upper), cell(realized),
             cell(check.difference if check else None), cell(within),
             badge("alert", "bad") if item.alert else badge("ok")]
        )  # fmt: skip
        chart_rows.append(
            Row(name, _number(item.value), _number(item.lower), _number(item.upper),
                _number(item.limit_lower), _number(item.limit_upper), _number(realized),
                flagged=item.alert or within is False, note="no estimate")
        )  # fmt: skip
    coverage = (
        f"Realized on {reconciled.labelled} rows with outcomes ({reconciled.coverage:.0%} of "
        "the window)."
        if reconciled
        else "No realized values yet: too few outcomes have arrived."
    )
    intro = (
        f"<p>Estimated from the scores of {cell(estimated.rows)} rows"
        f"{' after isotonic calibration' if estimated.calibrated else ''}. {esc(coverage)}</p>"
    )
    numbers = table(
        ["metric", "estimate", "band low", "band high", "reference low", "reference high",
         "realized", "difference", "realized in band", "estimate"],
        rows,
        numeric=(1, 2, 3, 4, 5, 6, 7),
    )  # fmt: skip
    drawn = ranges(
        chart_rows,
        title="Estimated against realized",
        x_label="Metric value (0 to 1)",
        legend=[("band", "reference range"), ("interval", "estimate's band"),
                ("point", "estimate"), ("flagged", "alert"), ("marker", "realized")],
        scale=(0.0, 1.0),
    )  # fmt: skip
    caption = (
        "Each estimate with its sampling band, the range the reference chunks span (an "
        "estimate outside it alerts) and, once outcomes arrived, the realized value."
    )
    return section(
        "Estimated performance (CBPE)", intro + chart(drawn, caption, numbers), anchor="cbpe"
    )


# --- fairness, multivariate, configuration ------------------------------------------------


def _fairness(result: WindowResult) -> str:
    fairness = result.fairness
    if fairness is None or not fairness.attributes:
        return section("Fairness", notice("No demographic attribute in this window.", "info"))
    warn = tuple(float(v) for v in fairness.warn or ())
    critical = tuple(float(v) for v in fairness.critical or ())
    intro = (
        "<p>Each group's metric as a ratio to the reference group's"
        + (f"; warning outside {warn[0]:g} to {warn[1]:g}" if len(warn) == 2 else "")
        + (f", critical outside {critical[0]:g} to {critical[1]:g}" if len(critical) == 2 else "")
        + (
            f"; groups under {fairness.min_group_size} rows are not judged"
            if fairness.min_group_size
            else ""
        )
        + ".</p>"
    )
    blocks = []
    for attribute in fairness.attributes:
        chart_rows, rows = [], []
        for group in attribute.groups:
            for metric, value in (group.metrics or {}).items():
                chart_rows.append(
                    Row(f"{group.group} · {metric}", _number(value.ratio),
                        band_low=warn[0] if len(warn) == 2 else None,
                        band_high=warn[1] if len(warn) == 2 else None,
                        flagged=value.level not in (None, "ok"), note="no ratio")
                )  # fmt: skip
                rows.append(
                    [esc(group.group), cell(group.n), esc(metric), cell(value.value),
                     cell(value.ratio), badge(value.level or group.status)]
                )  # fmt: skip
            if not group.metrics:
                rows.append([esc(group.group), cell(group.n), "—", "—", "—", badge(group.status)])
        reference = attribute.reference_group or "—"
        numbers = table(
            ["group", "rows", "metric", "value", "ratio", "level"], rows, numeric=(1, 3, 4)
        )
        legend = [("band", "within the warning band"), ("limit", "critical limits"),
                  ("point", "ratio"), ("flagged", "warning or critical")]  # fmt: skip
        drawn = ranges(
            chart_rows,
            title=f"{attribute.attribute}: ratio to group {reference}",
            x_label="Ratio to the reference group (1 = equal)",
            legend=legend,
            limits=critical,
            scale=(0.0, 2.0),
        )
        blocks.append(
            f"<h3>{esc(attribute.attribute)} {badge(attribute.level or 'ok')}</h3>"
            + chart(drawn, f"Reference group: {reference}.", numbers)
        )
    return section("Fairness", intro + "".join(blocks), anchor="fairness")


def _multivariate(result: WindowResult) -> str:
    m = result.multivariate
    band = tuple(float(v) for v in m.threshold or ())
    value = as_float(m.statistic)
    facts = definitions(
        [("Test", esc(m.test or "—")), ("Status", badge(m.status)),
         ("Reconstruction error", stat(m.statistic)),
         ("Band", f"{stat(band[0])} to {stat(band[1])}" if len(band) == 2 else "—"),
         ("Result", badge("drift", "bad") if m.drifted else badge("no drift", "ok"))]
        + [(k.replace("_", " "), cell(v)) for k, v in sorted((m.parameters or {}).items())]
    )  # fmt: skip
    if value is None or not math.isfinite(value):
        return section("Multivariate drift", facts, anchor="multivariate")
    row = Row("reconstruction error", value, band_low=band[0] if band else None,
              band_high=band[1] if band else None, flagged=m.drifted)  # fmt: skip
    drawn = ranges(
        [row],
        title="Multivariate drift (PCA reconstruction error)",
        x_label="Mean reconstruction error (standardised feature units)",
        legend=[("band", "reference band"), ("point", "this window"), ("flagged", "drift")],
    )
    numbers = table(
        ["statistic", "band low", "band high"],
        [[stat(m.statistic), stat(band[0]) if band else "—", stat(band[1]) if band else "—"]],
        numeric=(0, 1, 2),
    )
    caption = "The features no longer move together as before when the error leaves the band."
    return section(
        "Multivariate drift", facts + chart(drawn, caption, numbers), anchor="multivariate"
    )


def _configuration(result: WindowResult) -> str:
    config = result.configuration
    if config is None:
        return section(
            "Configuration applied",
            notice("This window was computed before configurations were recorded.", "info"),
            anchor="configuration",
        )
    facts = definitions(
        [("Thresholds", esc(config.thresholds_mode or "—")),
         ("Correction", esc(config.correction or "none")),
         ("Fewest rows judged", cell(config.min_samples)),
         ("Ignored overrides", esc(", ".join(config.ignored_overrides) or "none"))]
    )  # fmt: skip
    rows = [
        [esc(feature), esc(label_of(test)), stat(applied.value), esc(applied.source)]
        for feature, tests in sorted(config.thresholds.items())
        for test, applied in sorted(tests.items())
    ]
    defaults = ", ".join(f"{t.label} {fmt(t.defaults.get('numeric'))}" for t in BY_NAME.values())
    thresholds = table(
        ["feature", "test", "threshold", "source"],
        rows,
        numeric=(2,),
        empty=f"No per-feature threshold: the defaults applied ({defaults}).",
    )
    return section("Configuration applied", facts + thresholds, anchor="configuration")
