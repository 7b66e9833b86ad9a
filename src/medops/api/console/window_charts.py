"""The monitoring window page's charts: inline SVG drawn on the server, no script.

Three shapes cover the page:

- ``distribution``: reference against current as grouped bars per bin or category, in
  percent of each side's rows (a numeric feature's bins are the reference quantile bins the
  binned drift tests used; the open first and last bins read "< x" and "≥ y");
- ``ranges``: one row per item on a shared horizontal scale, with any of a shaded band, an
  interval (whiskers), the value (a dot, vermillion when flagged) and a second marker (a
  diamond: a baseline or a realized value), and vertical limit lines (performance with its
  intervals and baseline, CBPE against its reference range and the realized value, fairness
  ratios against their bands, the multivariate error against its band);
- ``reliability``: observed outcome rate against mean predicted score per calibration bin.

Every chart has ``role="img"``, a ``<title>``, a visible title, axes with ticks and units, a
legend (series differ by shape or outline as well as colour: Okabe-Ito classes of
console.css) and a table of its numbers in ``<details class="numbers">``. No ``style``
attribute anywhere (the console's policy forbids inline style).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from medops.api.console.layout import cell, table
from medops.core.svg import esc, num

WIDTH = 600
TITLE_Y = 16
LEGEND_Y = 34


@dataclass(frozen=True)
class Bins:
    """Reference and current counts over the same bins or categories (labels)."""

    labels: tuple[str, ...]
    reference: tuple[int, ...]
    current: tuple[int, ...]

    @staticmethod
    def shares(counts: Sequence[int]) -> list[float]:
        """Counts as proportions of their total (all zero when there are no rows)."""
        total = sum(counts)
        return [c / total if total else 0.0 for c in counts]


def edge_label(value: float) -> str:
    """A bin edge as a short number."""
    return f"{value:.4g}"


def bin_labels(edges: Sequence[float]) -> tuple[str, ...]:
    """Labels of the bins between ``edges``: "< x" and "≥ y" for the open ends."""
    labels = []
    for lower, upper in itertools.pairwise(edges):
        if math.isinf(lower) and math.isinf(upper):
            labels.append("all values")
        elif math.isinf(lower):
            labels.append(f"< {edge_label(upper)}")
        elif math.isinf(upper):
            labels.append(f"≥ {edge_label(lower)}")
        else:
            labels.append(f"{edge_label(lower)} to < {edge_label(upper)}")
    return tuple(labels)


def nice_ticks(low: float, high: float, most: int = 6) -> list[float]:
    """Round tick values covering [low, high], at most about ``most`` of them."""
    if not high > low:
        high = low + 1.0
    raw = (high - low) / max(most - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    start = math.floor(low / step + 1e-9) * step
    ticks = []
    value = start
    while value < high + step * 0.999:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _svg(width: int, height: int, title: str, body: Sequence[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(title)}">'
        f"<title>{esc(title)}</title>"
        f'<text x="{width / 2:.1f}" y="{TITLE_Y}" class="plot-title" text-anchor="middle">'
        f"{esc(title)}</text>{''.join(body)}</svg>"
    )


def _figure(svg: str, caption: str, numbers: str) -> str:
    return (
        f'<figure class="chart">{svg}<figcaption>{esc(caption)}</figcaption>'
        f'<details class="numbers"><summary>Numbers of this chart</summary>{numbers}</details>'
        "</figure>"
    )


# --- legend -------------------------------------------------------------------------------

SWATCH = {
    "reference": '<rect x="{x}" y="{y0}" width="12" height="10" class="f0"/>',
    "current": '<rect x="{x}" y="{y0}" width="12" height="10" class="f1 outlined"/>',
    "band": '<rect x="{x}" y="{y0}" width="16" height="10" class="band"/>',
    "interval": (
        '<line x1="{x}" y1="{y}" x2="{x16}" y2="{y}" class="s0"/>'
        '<line x1="{x}" y1="{y0}" x2="{x}" y2="{y1}" class="s0"/>'
        '<line x1="{x16}" y1="{y0}" x2="{x16}" y2="{y1}" class="s0"/>'
    ),
    "point": '<circle cx="{x6}" cy="{y}" r="4.5" class="mark-ok"/>',
    "flagged": '<circle cx="{x6}" cy="{y}" r="4.5" class="mark-bad"/>',
    "marker": '<path d="M{x6} {y0}l5 5l-5 5l-5 -5z" class="ref-mark"/>',
    "limit": '<line x1="{x}" y1="{y0}" x2="{x}" y2="{y1}" class="limit"/>',
    "diagonal": '<line x1="{x}" y1="{y1}" x2="{x16}" y2="{y0}" class="diag"/>',
    "line": (
        '<line x1="{x}" y1="{y}" x2="{x16}" y2="{y}" class="s0"/>'
        '<circle cx="{x8}" cy="{y}" r="3" class="mark-ok"/>'
    ),
}


def _legend(items: Sequence[tuple[str, str]], left: float) -> str:
    """Legend entries (swatch kind, label) in one row under the title."""
    parts, x, y = [], left, LEGEND_Y
    for kind, label in items:
        swatch = SWATCH[kind].format(
            x=num(x), x6=num(x + 6), x8=num(x + 8), x16=num(x + 16),
            y=num(y), y0=num(y - 5), y1=num(y + 5),
        )  # fmt: skip
        parts.append(
            f'<g class="legend-item">{swatch}<text x="{num(x + 22)}" y="{num(y + 4)}">'
            f"{esc(label)}</text></g>"
        )
        x += 34 + 6.2 * len(label)
    return "".join(parts)


# --- distribution -------------------------------------------------------------------------


def distribution(
    bins: Bins, *, title: str, x_label: str, caption: str, unseen: Sequence[str] = ()
) -> str:
    """Reference and current shares per bin or category, side by side, with a table."""
    ref, cur = Bins.shares(bins.reference), Bins.shares(bins.current)
    k = len(bins.labels)
    left, right, top, bottom = 58, 14, 48, 86
    width = max(WIDTH, left + right + 44 * k)
    height = 320
    inner_w, inner_h = width - left - right, height - top - bottom
    ticks = nice_ticks(0.0, max([*ref, *cur, 0.01]) * 100, 5)
    top_value = ticks[-1]

    def y(share: float) -> float:
        return top + inner_h * (1 - share * 100 / top_value)

    parts = [f'<rect x="{left}" y="{top}" width="{inner_w}" height="{inner_h}" class="frame"/>']
    for tick in ticks:
        at = y(tick / 100)
        parts.append(
            f'<line x1="{left}" y1="{num(at)}" x2="{left + inner_w}" y2="{num(at)}" '
            f'class="grid"/><line x1="{left - 4}" y1="{num(at)}" x2="{left}" y2="{num(at)}" '
            f'class="tick"/><text x="{left - 7}" y="{num(at + 4)}" text-anchor="end">'
            f"{tick:g}</text>"
        )
    slot = inner_w / max(k, 1)
    bar = min(slot * 0.38, 28)
    for i, label in enumerate(bins.labels):
        centre = left + slot * (i + 0.5)
        for offset, share, count, kind, side in (
            (-bar, ref[i], bins.reference[i], "f0", "reference"),
            (0.0, cur[i], bins.current[i], "f1 outlined", "current"),
        ):
            top_y = y(share)
            parts.append(
                f'<rect x="{num(centre + offset)}" y="{num(top_y)}" width="{num(bar)}" '
                f'height="{num(y(0) - top_y)}" class="{kind}"><title>{esc(label)}, {side}: '
                f"{share * 100:.1f}% ({count} rows)</title></rect>"
            )
        shown = label + (" (unseen)" if label in unseen else "")
        tx, ty = num(centre), num(top + inner_h + 12)
        parts.append(
            f'<line x1="{tx}" y1="{num(top + inner_h)}" x2="{tx}" y2="{num(top + inner_h + 4)}" '
            f'class="tick"/><text x="{tx}" y="{ty}" text-anchor="end" '
            f'transform="rotate(-35 {tx} {ty})">{esc(shown)}</text>'
        )
    parts.append(
        f'<text x="{num(left + inner_w / 2)}" y="{height - 6}" text-anchor="middle" '
        f'class="axis-label">{esc(x_label)}</text>'
    )
    mid = num(top + inner_h / 2)
    parts.append(
        f'<text x="14" y="{mid}" transform="rotate(-90 14 {mid})" text-anchor="middle" '
        f'class="axis-label">Share of rows (%)</text>'
    )
    n_ref, n_cur = sum(bins.reference), sum(bins.current)
    parts.append(
        _legend(
            [
                ("reference", f"reference ({n_ref} rows)"),
                ("current", f"this window ({n_cur} rows)"),
            ],
            left,
        )
    )
    rows = [
        [esc(label) + (" <em>(unseen in the reference)</em>" if label in unseen else ""),
         cell(bins.reference[i]), cell(ref[i], 4), cell(bins.current[i]), cell(cur[i], 4)]
        for i, label in enumerate(bins.labels)
    ]  # fmt: skip
    numbers = table(
        ["bin", "reference rows", "reference share", "window rows", "window share"],
        rows,
        numeric=(1, 2, 3, 4),
    )
    return _figure(_svg(width, height, title, parts), caption, numbers)


# --- ranges -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One row of a range chart; every part but the label is optional."""

    label: str
    value: float | None = None
    low: float | None = None
    high: float | None = None
    band_low: float | None = None
    band_high: float | None = None
    marker: float | None = None
    flagged: bool = False
    note: str | None = None


def _extent(
    rows: Sequence[Row], limits: Sequence[float], floor: tuple[float, float] | None
) -> tuple[float, float]:
    values = [
        v
        for r in rows
        for v in (r.value, r.low, r.high, r.band_low, r.band_high, r.marker)
        if v is not None and math.isfinite(v)
    ] + [v for v in limits if math.isfinite(v)]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if floor is not None:
        low, high = min(low, floor[0]), max(high, floor[1])
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    pad = (high - low) * 0.05
    return (low if floor and low >= floor[0] else low - pad), (
        high if floor and high <= floor[1] else high + pad
    )


def ranges(
    rows: Sequence[Row],
    *,
    title: str,
    x_label: str,
    legend: Sequence[tuple[str, str]],
    limits: Sequence[float] = (),
    scale: tuple[float, float] | None = None,
) -> str:
    """Rows on one horizontal scale (``scale`` is the least range shown, e.g. 0 to 1)."""
    left, right, top, bottom, row_h = 190, 18, 50, 40, 26
    width = WIDTH
    height = top + bottom + row_h * max(len(rows), 1)
    inner_w = width - left - right
    low, high = _extent(rows, limits, scale)
    ticks = [t for t in nice_ticks(low, high) if low - 1e-9 <= t <= high + 1e-9]

    def x(value: float) -> float:
        return left + inner_w * (min(max(value, low), high) - low) / (high - low)

    bottom_y = top + row_h * max(len(rows), 1)
    parts = [
        f'<rect x="{left}" y="{top}" width="{inner_w}" height="{bottom_y - top}" class="frame"/>'
    ]
    for tick in ticks:
        at = num(x(tick))
        parts.append(
            f'<line x1="{at}" y1="{top}" x2="{at}" y2="{bottom_y}" class="grid"/>'
            f'<line x1="{at}" y1="{bottom_y}" x2="{at}" y2="{bottom_y + 4}" class="tick"/>'
            f'<text x="{at}" y="{bottom_y + 15}" text-anchor="middle">{tick:g}</text>'
        )
    for i, row in enumerate(rows):
        y = top + row_h * (i + 0.5)
        parts.append(
            f'<text x="{left - 8}" y="{num(y + 4)}" text-anchor="end">{esc(row.label)}</text>'
        )
        if row.band_low is not None and row.band_high is not None:
            x0, x1 = x(row.band_low), x(row.band_high)
            parts.append(
                f'<rect x="{num(x0)}" y="{num(y - 9)}" width="{num(x1 - x0)}" height="18" '
                'class="band"/>'
            )
        if row.low is not None and row.high is not None:
            lo, hi = num(x(row.low)), num(x(row.high))
            parts.append(
                f'<line x1="{lo}" y1="{num(y)}" x2="{hi}" y2="{num(y)}" class="s0"/>'
                f'<line x1="{lo}" y1="{num(y - 5)}" x2="{lo}" y2="{num(y + 5)}" class="s0"/>'
                f'<line x1="{hi}" y1="{num(y - 5)}" x2="{hi}" y2="{num(y + 5)}" class="s0"/>'
            )
        if row.marker is not None:
            mx = x(row.marker)
            parts.append(
                f'<path d="M{num(mx)} {num(y - 6)}l6 6l-6 6l-6 -6z" class="ref-mark">'
                f"<title>{esc(row.label)}: {row.marker:.4g}</title></path>"
            )
        if row.value is not None:
            kind = "mark-bad" if row.flagged else "mark-ok"
            parts.append(
                f'<circle cx="{num(x(row.value))}" cy="{num(y)}" r="4.5" class="{kind}">'
                f"<title>{esc(row.label)}: {row.value:.4g}</title></circle>"
            )
        elif row.note:
            parts.append(
                f'<text x="{left + 6}" y="{num(y + 4)}" class="empty">{esc(row.note)}</text>'
            )
    for limit in limits:
        at = num(x(limit))
        parts.append(f'<line x1="{at}" y1="{top}" x2="{at}" y2="{bottom_y}" class="limit"/>')
    parts.append(
        f'<text x="{num(left + inner_w / 2)}" y="{height - 6}" text-anchor="middle" '
        f'class="axis-label">{esc(x_label)}</text>'
    )
    parts.append(_legend(legend, 12))
    return _svg(width, height, title, parts)


def chart(svg: str, caption: str, numbers: str) -> str:
    """A drawn chart with its caption and its numbers as a table."""
    return _figure(svg, caption, numbers)


# --- reliability --------------------------------------------------------------------------


@dataclass(frozen=True)
class Calibrated:
    """One calibration bin: its score range, rows, mean score and observed outcome rate."""

    lower: float
    upper: float
    count: int
    mean_predicted: float | None
    observed_rate: float | None


def reliability(bins: Sequence[Calibrated], *, title: str, caption: str) -> str:
    """Observed outcome rate against mean predicted probability per bin, with the diagonal
    of perfect calibration; the table lists every bin, empty ones too."""
    size, left, top, bottom = 380, 56, 50, 44
    width, height = size + left, size + 10
    inner = size - 30
    inner_h = height - top - bottom

    def x(v: float) -> float:
        return left + inner * min(max(v, 0.0), 1.0)

    def y(v: float) -> float:
        return top + inner_h * (1 - min(max(v, 0.0), 1.0))

    parts = [f'<rect x="{left}" y="{top}" width="{inner}" height="{inner_h}" class="frame"/>']
    for tick in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
        tx, ty = num(x(tick)), num(y(tick))
        parts.append(
            f'<line x1="{tx}" y1="{top}" x2="{tx}" y2="{num(y(0))}" class="grid"/>'
            f'<line x1="{left}" y1="{ty}" x2="{num(x(1))}" y2="{ty}" class="grid"/>'
            f'<text x="{tx}" y="{num(y(0) + 15)}" text-anchor="middle">{tick * 100:g}</text>'
            f'<text x="{left - 6}" y="{num(y(tick) + 4)}" text-anchor="end">{tick * 100:g}</text>'
        )
    parts.append(
        f'<line x1="{num(x(0))}" y1="{num(y(0))}" x2="{num(x(1))}" y2="{num(y(1))}" class="diag"/>'
    )
    filled = [
        b for b in bins if b.count and b.mean_predicted is not None and b.observed_rate is not None
    ]
    if filled:
        points = " ".join(
            f"{num(x(b.mean_predicted or 0))},{num(y(b.observed_rate or 0))}" for b in filled
        )
        parts.append(f'<polyline points="{points}" class="s0"/>')
    for b in filled:
        parts.append(
            f'<circle cx="{num(x(b.mean_predicted or 0))}" cy="{num(y(b.observed_rate or 0))}" '
            f'r="3.5" class="mark-ok"><title>{b.lower:g} to {b.upper:g}: {b.count} rows, mean '
            f"score {(b.mean_predicted or 0) * 100:.1f}%, observed "
            f"{(b.observed_rate or 0) * 100:.1f}%</title></circle>"
        )
    parts.append(
        f'<text x="{num(left + inner / 2)}" y="{height - 8}" text-anchor="middle" '
        'class="axis-label">Mean predicted probability (%)</text>'
    )
    mid = num(top + inner_h / 2)
    parts.append(
        f'<text x="14" y="{mid}" transform="rotate(-90 14 {mid})" text-anchor="middle" '
        'class="axis-label">Observed outcome rate (%)</text>'
    )
    parts.append(_legend([("diagonal", "perfect calibration"), ("line", "observed per bin")], left))
    rows = [
        [f"{b.lower:g} to {b.upper:g}", cell(b.count), cell(b.mean_predicted, 4),
         cell(b.observed_rate, 4)]
        for b in bins
    ]  # fmt: skip
    numbers = table(
        ["score bin", "rows", "mean predicted", "observed rate"], rows, numeric=(1, 2, 3)
    )
    return _figure(_svg(width, height, title, parts), caption, numbers)
