"""The sections of a deployment's monitoring page (console/monitoring.py): the verdict strip,
feature, prediction and label drift against their effective thresholds, multivariate drift,
performance with the CBPE estimate and calibration, and fairness, each a chart over the
series' windows with a table view of its latest ``TABLE_WINDOWS`` windows. They read only
the series' stored trend (``monitoring/trend.py``)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlencode

import numpy as np

from medops.api.console import charts
from medops.api.console.charts import Axis, Band, Line
from medops.api.console.layout import badge, cell, notice, section, table, when
from medops.core.svg import esc
from medops.core.windows import count_size
from medops.monitoring.drift_tests import BY_NAME
from medops.monitoring.trend import Trend, is_p_value

TABLE_WINDOWS: Final = 48


@dataclass(frozen=True)
class View:
    """What the page shows, as chosen by its query (validated) or by default."""

    name: str
    kind: str
    version: int
    range: str
    test: str | None
    kinds: tuple[str, ...]
    versions: tuple[int, ...]
    links: dict[int, str] = dataclasses.field(
        default_factory=dict, compare=False
    )  # made once per page

    def query(self, **changes: object) -> dict[str, object]:
        base: dict[str, object] = {
            "window": self.kind,
            "version": self.version,
            "range": self.range,
            "test": self.test,
        }
        base.update(changes)
        return {k: v for k, v in base.items() if v is not None}

    def href(self, path: str = "", **changes: object) -> str:
        return f"/deployments/{self.name}{path}?{urlencode(self.query(**changes))}"

    def window_href(self, sequence: int) -> str:
        return f"/deployments/{self.name}/windows/{self.kind}/{self.version}/{sequence}"


def _figure(chart: str, caption: str, numbers: str) -> str:
    return (
        f'<figure class="chart">{chart}<figcaption>{esc(caption)}</figcaption>'
        f'<details class="numbers"><summary>Table view</summary>{numbers}</details></figure>'
    )


def _latest(trend: Trend) -> list[int]:
    """The indexes of the windows a table view shows: the latest, newest first."""
    n = len(trend)
    return list(range(n - 1, max(n - TABLE_WINDOWS, 0) - 1, -1))


def _numbers(
    view: View, trend: Trend, columns: list[tuple[str, np.ndarray]], *, digits: int = 4
) -> str:
    """The latest TABLE_WINDOWS windows' numbers, newest first, each linking its page."""
    latest = _latest(trend)
    cells = [_column(values[latest], digits) for _, values in columns]
    rows = [[_window_link(view, trend, i), *row] for i, *row in zip(latest, *cells, strict=True)]
    headers = [
        "window end" if count_size(view.kind) is None else "window",
        *(h for h, _ in columns),
    ]
    caption = f"Latest {len(latest)} of {len(trend)} windows, newest first."
    return table(headers, rows, caption=caption, numeric=tuple(range(1, len(headers))))


def _window_link(view: View, trend: Trend, i: int) -> str:
    """A link to window ``i``'s page (made once per page: every table view repeats it)."""
    found = view.links.get(i)
    if found is None:
        label = when(trend.ends[i]) if count_size(view.kind) is None else f"#{trend.sequences[i]}"
        href = esc(view.window_href(int(trend.sequences[i])))
        found = view.links[i] = f'<a href="{href}">{esc(label)}</a>'
    return found


def _column(values: np.ndarray, digits: int) -> list[str]:
    """Table cells of numbers (as ``cell`` writes them) or of drifted flags."""
    if values.dtype == np.bool_:
        return ["drifted" if v else "no" for v in values.tolist()]
    return [
        f"{v:.{digits}f}" if math.isfinite(v) else cell(None if math.isnan(v) else v)
        for v in values.astype(np.float64).tolist()
    ]


def _value(value: object, digits: int) -> str:
    return _column(np.array([value]), digits)[0]


def _flags(trend: Trend, *key: str) -> np.ndarray:
    return np.nan_to_num(trend.get(*key), nan=0.0) > 0.5


def verdicts_section(view: View, trend: Trend, axis: Axis) -> str:
    strip = charts.verdict_strip(f"Verdict per {view.kind} window", axis, trend.verdicts)
    share = trend.get("dataset", "share")
    chart = charts.series_chart(
        "Share of drifted features",
        axis,
        [Line("share drifted", share)],
        y_label="share of features",
        flags=_flags(trend, "dataset", "drifted"),
        flag_label="dataset drifted",
        y_range=(0.0, 1.0),
    )
    n = len(trend)
    rows = [
        [
            _window_link(view, trend, i),
            badge(trend.verdicts[i]),
            esc(trend.statuses[i]),
            cell(int(trend.rows[i])),
            cell(int(trend.labelled[i])),
            _value(share[i], 3),
        ]
        for i in range(n - 1, max(n - TABLE_WINDOWS, 0) - 1, -1)
    ]
    numbers = table(
        ["window end", "verdict", "status", "rows", "labelled", "share drifted"],
        rows,
        caption=f"Latest {min(n, TABLE_WINDOWS)} of {n} windows, newest first.",
        numeric=(3, 4, 5),
    )
    return section(
        "Verdicts",
        _figure(
            strip,
            "Each window's verdict (the worst per pixel column); each links to its window.",
            numbers,
        )
        + _figure(
            chart, "Share of features judged drifted; marked windows drifted as a dataset.", ""
        ),
        anchor="verdicts",
    )


def _test_chart(view: View, trend: Trend, axis: Axis, group: str, name: str, test: str) -> str:
    value = trend.get(group, name, test, "value")
    limit = trend.get(group, name, test, "limit")
    p_value = is_p_value(test)
    what = "p-value" if p_value else BY_NAME[test].statistic if test in BY_NAME else test
    limit_label = "alpha" if p_value else "effective threshold"
    lines = [Line(f"{test} {'p-value' if p_value else 'statistic'}", value, "s0")]
    if np.isfinite(limit).any():
        lines.append(Line(limit_label, limit, "limit"))
    y_label = f"{test} p-value (drifted below alpha)" if p_value else f"{test}: {what}"
    chart = charts.series_chart(
        f"{name}: {test}",
        axis,
        lines,
        y_label=y_label[:60],
        flags=_flags(trend, group, name, test, "drifted"),
        y_range=(0.0, 1.0) if p_value else None,
    )
    numbers = _numbers(
        view,
        trend,
        [
            ("p-value" if p_value else "statistic", value),
            (limit_label, limit),
            ("drifted", _flags(trend, group, name, test, "drifted")),
        ],
    )
    caption = (
        f"{test} p-value against alpha (drifted when below it)"
        if p_value
        else f"{test} statistic against its effective threshold (drifted when above it; PSI "
        "and Jensen-Shannon thresholds are raised to their noise floor in small windows)"
    )
    return _figure(chart, caption, numbers)


def _tests_of(trend: Trend, group: str) -> dict[str, list[str]]:
    """Each name's tests in ``group``, in stored order."""
    found: dict[str, list[str]] = {}
    for key in trend.keys_of(group):
        if key[-1] == "value" and key[2] not in found.setdefault(key[1], []):
            found[key[1]].append(key[2])
    return found


def _judging(trend: Trend, group: str, name: str, tests: list[str]) -> str:
    """The test a feature is judged by: the first with a limit in the latest window."""
    for test in tests:
        limit = trend.get(group, name, test, "limit")
        if np.isfinite(limit[-1:]).any():
            return test
    return tests[0]


def drift_section(view: View, trend: Trend, axis: Axis, group: str, title: str) -> str:
    found = _tests_of(trend, group)
    if not found:
        return section(title, notice("No drift tests in these windows.", "info"))
    figures = []
    for name, tests in found.items():
        if view.test is not None and view.test not in tests:
            figures.append(f'<p class="empty">{esc(name)}: no {esc(view.test)} test.</p>')
            continue
        test = view.test or _judging(trend, group, name, tests)
        figures.append(_test_chart(view, trend, axis, group, name, test))
    return section(title, f'<div class="grid2">{"".join(figures)}</div>', anchor=group)


def multivariate_section(view: View, trend: Trend, axis: Axis) -> str:
    value = trend.get("multivariate", "value")
    low, high = trend.get("multivariate", "low"), trend.get("multivariate", "high")
    chart = charts.series_chart(
        "Multivariate drift (PCA reconstruction error)",
        axis,
        [Line("reconstruction error", value)],
        band=Band("reference band", low, high),
        y_label="reconstruction error",
        flags=_flags(trend, "multivariate", "drifted"),
    )
    numbers = _numbers(view, trend, [("error", value), ("band low", low), ("band high", high)])
    return section(
        "Multivariate drift",
        _figure(chart, "Drifted when outside the band.", numbers),
        anchor="multivariate",
    )


def _metric_names(trend: Trend, group: str, sub: int = 1) -> list[str]:
    return list(dict.fromkeys(k[sub] for k in trend.keys_of(group) if len(k) > sub + 1))


def performance_section(view: View, trend: Trend, axis: Axis) -> str:
    figures = []
    for metric in _metric_names(trend, "performance"):
        value = trend.get("performance", metric, "value")
        if not np.isfinite(value).any():
            continue
        low, high = (
            trend.get("performance", metric, "low"),
            trend.get("performance", metric, "high"),
        )
        lines = [Line(f"realised {metric}", value, "s0")]
        estimate = trend.get("estimated", metric, "value")
        band = Band("95% interval", low, high)
        columns = [("realised", value), ("ci low", low), ("ci high", high)]
        if np.isfinite(estimate).any():
            lines.append(Line("CBPE estimate", estimate, "s1"))
            lines.append(Line("estimate band", trend.get("estimated", metric, "lower"), "s2"))
            lines.append(Line("", trend.get("estimated", metric, "upper"), "s2"))
            columns.append(("CBPE estimate", estimate))
        chart = charts.series_chart(f"{metric}", axis, lines, band=band, y_label=metric)
        figures.append(
            _figure(
                chart,
                f"Realised {metric} on the labelled rows with its "
                "confidence interval (band), and the CBPE estimate with its "
                "band where one was made.",
                _numbers(view, trend, columns),
            )
        )
    estimated_only = [
        m
        for m in _metric_names(trend, "estimated")
        if not np.isfinite(trend.get("performance", m, "value")).any()
    ]
    for metric in estimated_only:
        estimate = trend.get("estimated", metric, "value")
        band = Band(
            "estimate band",
            trend.get("estimated", metric, "lower"),
            trend.get("estimated", metric, "upper"),
        )
        chart = charts.series_chart(
            f"{metric} (estimated)",
            axis,
            [Line("CBPE estimate", estimate, "s1")],
            band=band,
            y_label=metric,
        )
        figures.append(
            _figure(
                chart,
                "No outcomes yet: the CBPE estimate with its band.",
                _numbers(
                    view, trend, [("estimate", estimate), ("lower", band.low), ("upper", band.high)]
                ),
            )
        )
    ece = trend.get("calibration", "ece", "value")
    if np.isfinite(ece).any():
        band = Band(
            "interval",
            trend.get("calibration", "ece", "low"),
            trend.get("calibration", "ece", "high"),
        )
        chart = charts.series_chart(
            "Calibration (ECE)",
            axis,
            [Line("ECE", ece)],
            band=band,
            y_label="expected calibration error",
        )
        figures.append(
            _figure(
                chart,
                "Expected calibration error of the labelled rows.",
                _numbers(view, trend, [("ECE", ece), ("low", band.low), ("high", band.high)]),
            )
        )
    if not figures:
        return section("Performance", notice("No outcomes or estimates in these windows."))
    return section(
        "Performance", f'<div class="grid2">{"".join(figures)}</div>', anchor="performance"
    )


def fairness_section(view: View, trend: Trend, axis: Axis) -> str:
    keys = trend.keys_of("fairness")
    if not keys:
        return section("Fairness", notice("No fairness figures in these windows."))
    warn = (trend.get("fairness-band", "warn", "low"), trend.get("fairness-band", "warn", "high"))
    critical = (
        trend.get("fairness-band", "critical", "low"),
        trend.get("fairness-band", "critical", "high"),
    )
    figures = []
    by_attribute: dict[tuple[str, str], list[tuple[str, ...]]] = {}
    for key in keys:
        by_attribute.setdefault((key[1], key[3]), []).append(key)
    for (attribute, metric), group_keys in by_attribute.items():
        lines = [Line(f"{k[2]}", trend.get(*k), f"s{i % 6}") for i, k in enumerate(group_keys)]
        lines += [Line("critical", critical[0], "limit"), Line("", critical[1], "limit")]
        chart = charts.series_chart(
            f"{attribute}: {metric} ratio to the reference group",
            axis,
            lines,
            band=Band("warn band", warn[0], warn[1]),
            y_label=f"{metric} ratio",
        )
        columns = [(k[2], trend.get(*k)) for k in group_keys]
        figures.append(
            _figure(
                chart,
                "Each group's ratio to the reference group; inside the "
                "shaded warn band is fine, outside the dashed critical limits "
                "is critical.",
                _numbers(view, trend, columns),
            )
        )
    return section("Fairness", f'<div class="grid2">{"".join(figures)}</div>', anchor="fairness")
