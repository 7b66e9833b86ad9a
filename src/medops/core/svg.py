"""Small inline-SVG plots for validation reports: no JavaScript, fonts or images.

Every plot maps data on [0, 1] x [0, 1] (or [0, 1] for forest plots) into a fixed pixel frame.
Every string that reaches the markup goes through ``html.escape``.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

WIDTH = 360
HEIGHT = 320
MARGIN_LEFT = 52
MARGIN_RIGHT = 16
MARGIN_TOP = 28
MARGIN_BOTTOM = 44
TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)
LABEL_CHARS = 36


def esc(value: object) -> str:
    """``html.escape`` of ``str(value)``, quotes included."""
    return html.escape(str(value), quote=True)


def num(value: float) -> str:
    """A pixel coordinate with two decimals."""
    return f"{value:.2f}"


@dataclass(frozen=True)
class Frame:
    """The plotting area inside an SVG of ``width`` x ``height`` pixels."""

    width: int = WIDTH
    height: int = HEIGHT
    left: int = MARGIN_LEFT
    top: int = MARGIN_TOP

    @property
    def inner_width(self) -> int:
        """Width of the plotting area."""
        return self.width - self.left - MARGIN_RIGHT

    @property
    def inner_height(self) -> int:
        """Height of the plotting area."""
        return self.height - self.top - MARGIN_BOTTOM

    def x(self, value: float) -> float:
        """Pixel x of a data value in [0, 1] (clamped)."""
        return self.left + min(max(value, 0.0), 1.0) * self.inner_width

    def y(self, value: float) -> float:
        """Pixel y of a data value in [0, 1] (clamped); larger values are higher."""
        return self.top + (1.0 - min(max(value, 0.0), 1.0)) * self.inner_height


def _open(frame: Frame, title: str) -> list[str]:
    size = f'width="{frame.width}" height="{frame.height}"'
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" {size} viewBox="0 0 {frame.width} '
        f'{frame.height}" role="img" aria-label="{esc(title)}"><title>{esc(title)}</title>'
        f'<text x="{frame.width / 2:.1f}" y="16" class="plot-title" text-anchor="middle">'
        f"{esc(title)}</text>"
    )
    return [head]


def _axes(frame: Frame, x_label: str, y_label: str | None) -> list[str]:
    bottom, right = frame.y(0.0), frame.x(1.0)
    parts = [
        (
            f'<rect x="{frame.left}" y="{frame.top}" width="{frame.inner_width}" '
            f'height="{frame.inner_height}" class="frame"/>'
        )
    ]
    for tick in TICKS:
        x, y = frame.x(tick), frame.y(tick)
        parts.append(
            f'<line x1="{num(x)}" y1="{num(bottom)}" x2="{num(x)}" y2="{num(bottom + 4)}" '
            f'class="axis"/><text x="{num(x)}" y="{num(bottom + 16)}" text-anchor="middle" '
            f'class="tick">{tick:g}</text>'
        )
        if y_label is not None:
            parts.append(
                f'<line x1="{num(frame.left - 4)}" y1="{num(y)}" x2="{frame.left}" '
                f'y2="{num(y)}" class="axis"/><text x="{num(frame.left - 7)}" '
                f'y="{num(y + 4)}" text-anchor="end" class="tick">{tick:g}</text>'
            )
    parts.append(
        f'<text x="{num((frame.left + right) / 2)}" y="{frame.height - 8}" '
        f'text-anchor="middle" class="axis-label">{esc(x_label)}</text>'
    )
    if y_label is not None:
        mid = num((frame.top + bottom) / 2)
        parts.append(
            f'<text x="14" y="{mid}" transform="rotate(-90 14 {mid})" text-anchor="middle" '
            f'class="axis-label">{esc(y_label)}</text>'
        )
    return parts


def _polyline(frame: Frame, xs: Sequence[float], ys: Sequence[float], css: str) -> str:
    points = " ".join(f"{num(frame.x(x))},{num(frame.y(y))}" for x, y in zip(xs, ys, strict=True))
    return f'<polyline points="{points}" class="{esc(css)}"/>'


def _steps(xs: Sequence[float], ys: Sequence[float]) -> tuple[list[float], list[float]]:
    """A right-continuous step path: each precision holds from the previous recall on."""
    step_x: list[float] = []
    step_y: list[float] = []
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        if i:
            step_x.append(step_x[-1])
            step_y.append(y)
        step_x.append(x)
        step_y.append(y)
    return step_x, step_y


def curve_plot(
    xs: Sequence[float],
    ys: Sequence[float],
    *,
    title: str,
    x_label: str,
    y_label: str,
    diagonal: bool = False,
    baseline: float | None = None,
    step: bool = False,
) -> str:
    """A curve on the unit square, optionally with the chance diagonal or a horizontal line."""
    frame = Frame()
    parts = _open(frame, title) + _axes(frame, x_label, y_label)
    if diagonal:
        parts.append(_polyline(frame, [0.0, 1.0], [0.0, 1.0], "reference"))
    if baseline is not None:
        parts.append(_polyline(frame, [0.0, 1.0], [baseline, baseline], "reference"))
    if xs:
        line_x, line_y = _steps(xs, ys) if step else (list(xs), list(ys))
        parts.append(_polyline(frame, line_x, line_y, "curve"))
    parts.append("</svg>")
    return "".join(parts)


class ReliabilityBin(Protocol):
    """One calibration bin as the reliability diagram reads it."""

    @property
    def lower(self) -> float: ...
    @property
    def upper(self) -> float: ...
    @property
    def count(self) -> int: ...
    @property
    def mean_predicted(self) -> float | None: ...
    @property
    def fraction_positive(self) -> float | None: ...


def reliability_plot(bins: Sequence[ReliabilityBin], *, title: str) -> str:
    """Observed fraction positive against mean predicted score per bin, sized by count."""
    frame = Frame()
    parts = _open(frame, title) + _axes(frame, "Mean predicted probability", "Fraction positive")
    parts.append(_polyline(frame, [0.0, 1.0], [0.0, 1.0], "reference"))
    filled = [
        (b, b.mean_predicted, b.fraction_positive)
        for b in bins
        if b.count and b.mean_predicted is not None and b.fraction_positive is not None
    ]
    largest = max((int(b.count) for b, _, _ in filled), default=1)
    for b in bins:  # count histogram along the bottom, a fifth of the height at most
        height = 0.2 * frame.inner_height * int(b.count or 0) / largest
        x0, x1 = frame.x(float(b.lower)), frame.x(float(b.upper))
        parts.append(
            f'<rect x="{num(x0)}" y="{num(frame.y(0.0) - height)}" width="{num(x1 - x0)}" '
            f'height="{num(height)}" class="bar"><title>{esc(b.lower)}-{esc(b.upper)}: '
            f"n={esc(b.count)}</title></rect>"
        )
    if filled:
        xs = [float(predicted) for _, predicted, _ in filled]
        ys = [float(observed) for _, _, observed in filled]
        parts.append(_polyline(frame, xs, ys, "curve"))
    for b, predicted, observed in filled:
        cx, cy = frame.x(float(predicted)), frame.y(float(observed))
        radius = 2.5 + 4.5 * (int(b.count) / largest) ** 0.5
        parts.append(
            f'<circle cx="{num(cx)}" cy="{num(cy)}" r="{num(radius)}" class="point">'
            f"<title>n={esc(b.count)}</title></circle>"
            f'<text x="{num(cx + radius + 2)}" y="{num(cy - 3)}" class="count">'
            f"{esc(b.count)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class ForestRow:
    """One row of a forest plot: a label and a value with its interval, or a note instead."""

    label: str
    value: float | None
    low: float | None
    high: float | None
    note: str | None = None


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def _forest_row(frame: Frame, row: ForestRow, y: float) -> list[str]:
    parts = [
        (
            f'<text x="{frame.left - 8}" y="{num(y + 4)}" text-anchor="end" class="tick">'
            f"{esc(_short(row.label))}<title>{esc(row.label)}</title></text>"
        )
    ]
    if row.value is None:
        parts.append(
            f'<text x="{num(frame.x(0.02))}" y="{num(y + 4)}" class="note">'
            f"{esc(row.note or 'undefined')}</text>"
        )
        return parts
    if row.low is not None and row.high is not None:
        x0, x1 = frame.x(row.low), frame.x(row.high)
        parts.append(
            f'<line x1="{num(x0)}" y1="{num(y)}" x2="{num(x1)}" y2="{num(y)}" class="whisker"/>'
            f'<line x1="{num(x0)}" y1="{num(y - 4)}" x2="{num(x0)}" y2="{num(y + 4)}" '
            f'class="whisker"/><line x1="{num(x1)}" y1="{num(y - 4)}" x2="{num(x1)}" '
            f'y2="{num(y + 4)}" class="whisker"/>'
        )
    parts.append(
        f'<rect x="{num(frame.x(row.value) - 4)}" y="{num(y - 4)}" width="8" height="8" '
        f'class="estimate"><title>{esc(row.label)}: {row.value:.3f}</title></rect>'
    )
    return parts


def forest_plot(rows: Sequence[ForestRow], *, overall: float | None, title: str) -> str:
    """Each group's value with CI whiskers on [0, 1], and a dashed line at the overall value."""
    row_height = 22
    height = MARGIN_TOP + MARGIN_BOTTOM + row_height * max(len(rows), 1)
    frame = Frame(width=560, height=height, left=220)
    parts = _open(frame, title) + _axes(frame, title, None)
    if overall is not None:
        x = num(frame.x(overall))
        parts.append(
            f'<line x1="{x}" y1="{frame.top}" x2="{x}" y2="{num(frame.y(0.0))}" '
            f'class="overall"><title>overall: {overall:.3f}</title></line>'
        )
    for i, row in enumerate(rows):
        parts.extend(_forest_row(frame, row, frame.top + row_height * (i + 0.5)))
    parts.append("</svg>")
    return "".join(parts)


VALUE_ROOM = 52  # pixels beside the longest contribution bar for its value label


@dataclass(frozen=True)
class ContributionBar:
    """One feature's contribution to a prediction (or its mean contribution)."""

    label: str
    value: float
    detail: str = ""  # e.g. the feature's value as sent, shown after the label


def contribution_plot(bars: Sequence[ContributionBar], *, title: str, axis_label: str) -> str:
    """Horizontal bars around a zero line: a feature that raises the output to the right
    (``bar-up``), one that lowers it to the left (``bar-down``), lengths to one scale (the
    largest magnitude); each bar's exact value in its ``title`` and at its end."""
    row_height = 22
    height = MARGIN_TOP + MARGIN_BOTTOM + row_height * max(len(bars), 1)
    frame = Frame(width=640, height=height, left=240)
    largest = max((abs(b.value) for b in bars), default=0.0) or 1.0
    # The longest bar stops short of the plot's edge by room for its value label, so a label
    # never runs into the feature names (left) or out of the drawing (right).
    reach = 0.5 - VALUE_ROOM / (frame.x(1.0) - frame.x(0.0))

    def at(value: float) -> float:  # [-largest, largest] -> [0.5 - reach, 0.5 + reach]
        return 0.5 + reach * value / largest

    parts = _open(frame, title)
    zero = num(frame.x(0.5))
    parts.append(
        f'<line x1="{zero}" y1="{frame.top}" x2="{zero}" y2="{num(frame.y(0.0))}" '
        'class="axis"/>'
        f'<text x="{num(frame.x(0.5))}" y="{frame.height - 12}" text-anchor="middle" '
        f'class="axis-label">{esc(axis_label)}</text>'
        f'<text x="{num(frame.x(at(-largest)))}" y="{frame.height - 26}" text-anchor="middle" '
        f'class="tick-label">{-largest:+.3g}</text>'
        f'<text x="{num(frame.x(at(largest)))}" y="{frame.height - 26}" text-anchor="middle" '
        f'class="tick-label">{largest:+.3g}</text>'
    )
    for i, bar in enumerate(bars):
        y = frame.top + row_height * (i + 0.5)
        label = f"{bar.label} = {bar.detail}" if bar.detail else bar.label
        x0, x1 = sorted((frame.x(0.5), frame.x(at(bar.value))))
        css = "bar-up" if bar.value > 0 else "bar-down"
        anchor, text_x = ("start", x1 + 4) if bar.value >= 0 else ("end", x0 - 4)
        parts.append(
            f'<text x="{frame.left - 8}" y="{num(y + 4)}" text-anchor="end" class="tick">'
            f"{esc(_short(label))}<title>{esc(label)}</title></text>"
            f'<rect x="{num(x0)}" y="{num(y - 7)}" width="{num(max(x1 - x0, 0.5))}" '
            f'height="14" class="{css}"><title>{esc(bar.label)}: {bar.value:+.6g}</title></rect>'
            f'<text x="{num(text_x)}" y="{num(y + 4)}" text-anchor="{anchor}" class="count">'
            f"{bar.value:+.3g}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
