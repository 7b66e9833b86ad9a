"""Charts of a series of windows over time, drawn on the server as inline SVG.

A chart is a string of SVG with ``role="group"`` (not ``img``: its markers are links, and an
image's content is not reachable, which axe-core reports as nested interactive controls), an
``aria-label`` and a ``<title>``, axes with ticks and units, and a legend when several series
share it; series differ by dash pattern (the ``.s0``..``.s5`` classes) and not by colour
alone, limits are dashed (``.limit``), intervals are shaded (``.band``) and flagged windows
carry a marker that links to the window's page.

A series with more windows than the plotting area has columns (``COLUMN_PX`` pixels wide) is
drawn per column as the column's minimum and maximum (a one-hour spike in 90 days of hours
stays visible), markers one per column (the first flagged window in it), and the verdict
strip one rectangle per column coloured by the worst verdict in it, linking to that window.
Points of a level run (a constant threshold) are left out but its ends. The numbers are never
downsampled anywhere else: the CSV holds every window.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import numpy as np
import numpy.typing as npt

from medops.core.svg import esc

FloatArray = npt.NDArray[np.float64]
WIDTH: Final = 640
HEIGHT: Final = 210
LEFT: Final = 58
RIGHT: Final = 12
TOP: Final = 44
BOTTOM: Final = 40
STRIP_HEIGHT: Final = 96
COLUMN_PX: Final = 2  # a drawn column: two pixels wide (a one-window spike stays visible)
VERDICT_TONES: Final = {"stable": "ok", "covariate-shift": "warn", "concept-drift": "bad"}
TONE_RANK: Final = {"ok": 0, "muted": 1, "warn": 2, "bad": 3}


@dataclass(frozen=True)
class Line:
    """One series: a value per window (NaN: none), drawn with a ``.sN`` or ``.limit`` class."""

    label: str
    values: FloatArray
    css: str = "s0"


@dataclass(frozen=True)
class Band:
    """An interval per window (a confidence interval, an estimate's band, a reference band)."""

    label: str
    low: FloatArray
    high: FloatArray


@dataclass(frozen=True)
class Axis:
    """The windows' positions: seconds since the epoch (window end, UTC) or sequences."""

    xs: FloatArray
    is_time: bool
    hrefs: Sequence[str]  # each window's page

    @property
    def label(self) -> str:
        return "window end (UTC)" if self.is_time else "window sequence (count windows)"


def columns_of(xs: FloatArray, width: int) -> tuple[npt.NDArray[np.intp], FloatArray]:
    """Where each pixel column's windows start (indexes into ``xs``, which rises) and the
    column's x position in [0, 1]; one column per window when they fit."""
    n = len(xs)
    lo, hi = (float(xs[0]), float(xs[-1])) if n else (0.0, 1.0)
    span = hi - lo or 1.0
    position = (xs - lo) / span
    if n <= width:
        return np.arange(n, dtype=np.intp), position
    column = np.minimum((position * width).astype(np.intp), width - 1)
    starts = np.flatnonzero(np.r_[True, np.diff(column) > 0])
    return starts, (column[starts] + 0.5) / width


def _envelope(values: FloatArray, starts: npt.NDArray[np.intp]) -> tuple[FloatArray, FloatArray]:
    if len(starts) == len(values):
        return values, values
    with np.errstate(all="ignore"):
        return np.fmin.reduceat(values, starts), np.fmax.reduceat(values, starts)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


class _Frame:
    def __init__(self, y_low: float, y_high: float, height: int = HEIGHT) -> None:
        self.height = height
        self.inner_w = WIDTH - LEFT - RIGHT
        self.inner_h = height - TOP - BOTTOM
        self.y_low, self.y_high = y_low, y_high

    def px(self, position: FloatArray) -> FloatArray:
        return LEFT + position * self.inner_w

    def py(self, values: FloatArray) -> FloatArray:
        span = (self.y_high - self.y_low) or 1.0
        clipped = np.clip((values - self.y_low) / span, -0.02, 1.02)
        return TOP + (1.0 - clipped) * self.inner_h


def _runs(ok: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """The [begin, end) ranges where ``ok`` holds."""
    edges = np.flatnonzero(np.diff(np.r_[0, ok.astype(np.int8), 0]))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _points(xs: FloatArray, ys: FloatArray) -> str:
    """``x,y x,y ...`` in whole pixels (columns are two wide), formatted in one C call, not
    one per point: the 90-day page draws some 50,000 points."""
    pairs = np.rint(np.column_stack((xs, ys)).ravel()).astype(np.int64).tolist()
    return ("%d,%d " * len(xs)) % tuple(pairs)


def _level_runs_dropped(ys: FloatArray) -> npt.NDArray[np.bool_]:
    """Which points a line needs: the inner points of a level run (a constant threshold)
    add nothing."""
    keep = np.ones(len(ys), dtype=np.bool_)
    if len(ys) > 2:
        keep[1:-1] = (ys[1:-1] != ys[:-2]) | (ys[1:-1] != ys[2:])
    return keep


def _path(xs: FloatArray, ys: FloatArray, css: str) -> str:
    """One path through the finite points; a NaN breaks it."""
    parts = []
    for a, b in _runs(np.isfinite(ys)):
        keep = _level_runs_dropped(ys[a:b])
        parts.append(f"M{_points(xs[a:b][keep], ys[a:b][keep])}")
    if not parts:
        return ""
    return f'<path d="{"".join(parts)}" class="{esc(css)}"/>'


def _band_path(xs: FloatArray, low: FloatArray, high: FloatArray) -> str:
    out = []
    for begin, end in _runs(np.isfinite(low) & np.isfinite(high)):
        top = _points(xs[begin:end], high[begin:end])
        bottom = _points(xs[begin:end][::-1], low[begin:end][::-1])
        out.append(f'<polygon points="{top}{bottom}" class="band"/>')
    return "".join(out)


def _time_label(seconds: float, span: float) -> str:
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return moment.strftime("%m-%d %H:%M" if span < 3 * 86400 else "%Y-%m-%d")


def _x_axis(frame: _Frame, axis: Axis) -> list[str]:
    bottom = TOP + frame.inner_h
    lo, hi = (float(axis.xs[0]), float(axis.xs[-1])) if len(axis.xs) else (0.0, 1.0)
    span = hi - lo
    parts = []
    for i in range(5):
        value = lo + span * i / 4
        x = LEFT + frame.inner_w * i / 4
        text = _time_label(value, span) if axis.is_time else f"{value:.0f}"
        parts.append(
            f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}" class="tick"/>'
            f'<text x="{x:.1f}" y="{bottom + 15}" text-anchor="middle">{esc(text)}</text>'
        )
        if len(axis.xs) < 2:
            break
    parts.append(
        f'<text x="{LEFT + frame.inner_w / 2:.1f}" y="{frame.height - 6}" '
        f'text-anchor="middle" class="axis-label">{esc(axis.label)}</text>'
    )
    return parts


def _y_axis(frame: _Frame, label: str) -> list[str]:
    parts = []
    for tick in nice_ticks(frame.y_low, frame.y_high):
        y = float(frame.py(np.array([tick]))[0])
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + frame.inner_w}" y2="{y:.1f}" '
            f'class="grid"/><text x="{LEFT - 5}" y="{y + 4:.1f}" text-anchor="end">'
            f"{tick:.4g}</text>"
        )
    mid = TOP + frame.inner_h / 2
    parts.append(
        f'<text x="13" y="{mid:.1f}" transform="rotate(-90 13 {mid:.1f})" '
        f'text-anchor="middle" class="axis-label">{esc(label)}</text>'
    )
    return parts


def _legend(lines: Sequence[Line], band: Band | None, marks: str | None) -> str:
    items: list[str] = []
    x = LEFT
    for line in lines:
        items.append(
            f'<line x1="{x}" y1="30" x2="{x + 22}" y2="30" class="{esc(line.css)}"/>'
            f'<text x="{x + 26}" y="34">{esc(line.label)}</text>'
        )
        x += 34 + 6 * len(line.label)
    if band is not None:
        items.append(
            f'<rect x="{x}" y="25" width="22" height="10" class="band"/>'
            f'<text x="{x + 26}" y="34">{esc(band.label)}</text>'
        )
        x += 34 + 6 * len(band.label)
    if marks is not None:
        items.append(
            f'<circle cx="{x + 6}" cy="30" r="4" class="mark-bad"/>'
            f'<text x="{x + 14}" y="34">{esc(marks)}</text>'
        )
    return "".join(items)


def _range(lines: Sequence[Line], band: Band | None) -> tuple[float, float]:
    arrays = [line.values for line in lines]
    if band is not None:
        arrays += [band.low, band.high]
    finite = np.concatenate([a[np.isfinite(a)] for a in arrays]) if arrays else np.array([])
    if not finite.size:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    pad = (high - low) * 0.06 or abs(high) * 0.1 or 1.0
    return low - pad, high + pad


def series_chart(
    title: str,
    axis: Axis,
    lines: Sequence[Line],
    *,
    y_label: str,
    band: Band | None = None,
    flags: npt.NDArray[np.bool_] | None = None,
    flag_label: str = "drifted window",
    y_range: tuple[float, float] | None = None,
) -> str:
    """A chart of ``lines`` (and ``band``) over the windows of ``axis``; windows in
    ``flags`` are marked on the first line and link to their pages."""
    y_low, y_high = y_range or _range(lines, band)
    frame = _Frame(y_low, y_high)
    starts, position = columns_of(axis.xs, frame.inner_w // COLUMN_PX)
    xs = frame.px(position)
    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{frame.height}" '
            f'viewBox="0 0 {WIDTH} {frame.height}" role="group" aria-label="{esc(title)}">'
            f'<title>{esc(title)}</title><text x="{LEFT}" y="14" class="plot-title">'
            f"{esc(title)}</text>"
        ),
        *_y_axis(frame, y_label),
        (
            f'<rect x="{LEFT}" y="{TOP}" width="{frame.inner_w}" height="{frame.inner_h}" '
            'class="frame"/>'
        ),
        *_x_axis(frame, axis),
    ]
    if band is not None:
        low = _envelope(band.low, starts)[0]
        high = _envelope(band.high, starts)[1]
        parts.append(_band_path(xs, frame.py(low), frame.py(high)))
    for line in lines:
        lowest, highest = _envelope(line.values, starts)
        if lowest is highest:
            parts.append(_path(xs, frame.py(line.values), line.css))
        else:  # each column drawn from its minimum to its maximum
            both_x = np.repeat(xs, 2)
            both_y = np.column_stack((lowest, highest)).ravel()
            parts.append(_path(both_x, frame.py(both_y), line.css))
    marked = flags is not None and bool(flags.any())
    if flags is not None and marked and lines:
        parts.append(_marks(frame, axis, lines[0].values, flags, starts, xs, flag_label))
    parts.insert(1, _legend(lines, band, flag_label if marked else None))
    parts.append("</svg>")
    return "".join(parts)


def _marks(
    frame: _Frame,
    axis: Axis,
    values: FloatArray,
    flags: npt.NDArray[np.bool_],
    starts: npt.NDArray[np.intp],
    xs: FloatArray,
    label: str,
) -> str:
    column = np.searchsorted(starts, np.arange(len(values)), side="right") - 1
    seen: set[int] = set()
    out = []
    for index in np.flatnonzero(flags).tolist():
        col = int(column[index])
        if col in seen:
            continue
        seen.add(col)
        value = values[index]
        y = float(frame.py(np.array([value if math.isfinite(value) else frame.y_high]))[0])
        out.append(
            f'<a href="{esc(axis.hrefs[index])}"><circle cx="{xs[col]:.1f}" cy="{y:.1f}" '
            f'r="3.5" class="mark-bad"><title>{esc(label)}: window {index + 1}</title>'
            "</circle></a>"
        )
    return "".join(out)


def verdict_strip(title: str, axis: Axis, verdicts: Sequence[str]) -> str:
    """The verdict of every window as a coloured strip (the worst per pixel column), each
    rectangle linking to its window; the words are in the table view beside it."""
    inner_w = WIDTH - LEFT - RIGHT
    starts, position = columns_of(axis.xs, inner_w // COLUMN_PX)
    tones = np.array([TONE_RANK[VERDICT_TONES.get(v, "muted")] for v in verdicts], dtype=np.int8)
    bounds = [*starts.tolist(), len(verdicts)]
    width = max(inner_w / max(len(starts), 1), 1.0)
    y, h = 36, 28
    legend = "".join(
        f'<rect x="{LEFT + i * 130}" y="74" width="12" height="12" class="strip-{tone}"/>'
        f'<text x="{LEFT + 16 + i * 130}" y="84">{esc(word)}</text>'
        for i, (word, tone) in enumerate(
            (
                ("stable", "ok"),
                ("covariate shift", "warn"),
                ("concept drift", "bad"),
                ("other (e.g. too few rows)", "muted"),
            )
        )
    )
    rects = []
    for col, (begin, end) in enumerate(itertools.pairwise(bounds)):
        worst = begin + int(np.argmax(tones[begin:end]))
        tone = next(t for t, rank in TONE_RANK.items() if rank == tones[worst])
        x = LEFT + float(position[col]) * inner_w - width / 2
        rects.append(
            f'<a href="{esc(axis.hrefs[worst])}"><rect x="{x:.1f}" y="{y}" width="{width:.2f}" '
            f'height="{h}" class="strip-{tone}"><title>{esc(verdicts[worst])}</title></rect></a>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{STRIP_HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {STRIP_HEIGHT}" role="group" aria-label="{esc(title)}">'
        f'<title>{esc(title)}</title><text x="{LEFT}" y="14" class="plot-title">{esc(title)}'
        f'</text><text x="{LEFT}" y="30" class="axis-label">{esc(axis.label)}: '
        f"{esc(_span_text(axis))}</text>{''.join(rects)}{legend}</svg>"
    )


def _span_text(axis: Axis) -> str:
    if not len(axis.xs):
        return "no windows"
    lo, hi = float(axis.xs[0]), float(axis.xs[-1])
    if axis.is_time:
        return f"{_stamp(lo)} to {_stamp(hi)}"
    return f"{lo:.0f} to {hi:.0f}"


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
