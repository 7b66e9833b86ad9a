"""A prediction's explanation as a bar chart in the terminal: one row per contribution
shown, the bar's length proportional to its magnitude (the largest fills ``BAR_WIDTH``),
drawn right of the axis (``+``, red: raises the score) or left of it (``-``, blue: lowers
it). The signs are in the text too, so the chart reads without colour."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from rich.table import Table
from rich.text import Text

from medops.cli.output import console

BAR_WIDTH: Final = 24


def bar_rows(contributions: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, str, Text]]:
    """(feature, value, contribution, bar) per contribution; the bar is two halves around
    ``|``: decreases fill the left one from the axis, increases the right one."""
    largest = max((abs(float(c["contribution"])) for c in contributions), default=0.0)
    rows = []
    for item in contributions:
        value = float(item["contribution"])
        cells = round(abs(value) / largest * BAR_WIDTH) if largest > 0 else 0
        cells = max(cells, 1) if value != 0 else 0
        bar = Text()
        bar.append(" " * (BAR_WIDTH - cells) if value < 0 else " " * BAR_WIDTH)
        if value < 0:
            bar.append("-" * cells, style="blue")
        bar.append("|")
        if value > 0:
            bar.append("+" * cells, style="red")
        shown = item.get("value")
        rows.append(
            (
                str(item["feature"]),
                shown if isinstance(shown, str) else json.dumps(shown),
                f"{value:+.4f}",
                bar,
            )
        )
    return rows


def print_explanation(explanation: Mapping[str, Any], title: str) -> None:
    """The chart with its base value, output, method and what the other features add."""
    table = Table(title=title, title_justify="left")
    for column in ("feature", "value", "contribution"):
        table.add_column(column, overflow="fold")
    table.add_column(f"{'lowers':>{BAR_WIDTH}}|raises", no_wrap=True)
    for row in bar_rows(explanation["contributions"]):
        table.add_row(*row)
    console.print(table)
    exact = "exact" if explanation["exact"] else "approximate"
    error = explanation.get("error_estimate")
    note = f" (error estimate {error:.2g})" if error is not None else ""
    rest = explanation.get("rest")
    others = f" + other features {rest:+.4f}" if rest is not None else ""
    console.print(
        f"{explanation['method']} ({exact}{note}), {explanation['scale']} scale: base "
        f"{explanation['base_value']:+.4f}{others} + shown = output {explanation['output']:+.4f}"
    )
