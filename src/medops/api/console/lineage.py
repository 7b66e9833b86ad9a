"""A model's lineage drawn as a small left-to-right graph: training data -> versions (and
the versions they were derived from) -> aliases -> deployments. Inline SVG, with the same
facts as a table for screen readers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from medops.api.console.layout import table
from medops.core.svg import esc

BOX_W, BOX_H, GAP_Y, COL_GAP, TOP = 180, 30, 14, 70, 40
COLUMNS = ("training data", "versions", "aliases", "deployments")


@dataclass(frozen=True)
class Node:
    key: str
    label: str
    column: int
    href: str | None = None


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str


def _short(text: str, limit: int = 26) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def lineage_svg(nodes: Sequence[Node], edges: Sequence[Edge], *, title: str) -> str:
    """The graph with its table view; nodes are placed top-down in their column."""
    rows: dict[int, int] = {}
    where: dict[str, tuple[float, float]] = {}
    for node in nodes:
        index = rows.get(node.column, 0)
        rows[node.column] = index + 1
        x: float = 10 + node.column * (BOX_W + COL_GAP)
        y: float = TOP + index * (BOX_H + GAP_Y)
        where[node.key] = (x, y)
    height = TOP + max(rows.values(), default=1) * (BOX_H + GAP_Y) + 10
    width = 10 + len(COLUMNS) * (BOX_W + COL_GAP) - COL_GAP + 10
    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="group" aria-label="{esc(title)}">'
            f"<title>{esc(title)}</title>"
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
            'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
            'class="f0"/></marker></defs>'
        )
    ]
    for column, name in enumerate(COLUMNS):
        x = 10 + column * (BOX_W + COL_GAP) + BOX_W / 2
        parts.append(
            f'<text x="{x:.0f}" y="22" text-anchor="middle" class="plot-title">{esc(name)}</text>'
        )
    for edge in edges:
        if edge.source not in where or edge.target not in where:
            continue
        (x1, y1), (x2, y2) = where[edge.source], where[edge.target]
        same = x1 == x2
        start_x, end_x = (x1 + BOX_W, x2) if not same else (x1 + BOX_W, x2 + BOX_W)
        bend = start_x + (COL_GAP / 2 if not same else 30)
        parts.append(
            f'<path d="M {start_x:.0f} {y1 + BOX_H / 2:.0f} C {bend:.0f} {y1 + BOX_H / 2:.0f} '
            f'{bend:.0f} {y2 + BOX_H / 2:.0f} {end_x:.0f} {y2 + BOX_H / 2:.0f}" class="s0" '
            'marker-end="url(#arrow)"><title>'
            f"{esc(edge.label)}</title></path>"
        )
    for node in nodes:
        x, y = where[node.key]
        box = (
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{BOX_W}" height="{BOX_H}" rx="4" '
            'class="node"/>'
            f'<text x="{x + 8:.0f}" y="{y + 19:.0f}">{esc(_short(node.label))}</text>'
        )
        if node.href:
            box = f'<a href="{esc(node.href)}">{box}<title>{esc(node.label)}</title></a>'
        parts.append(box)
    parts.append("</svg>")
    labels = {n.key: n.label for n in nodes}
    numbers = table(
        ["from", "to", "relation"],
        [
            [esc(labels.get(e.source, e.source)), esc(labels.get(e.target, e.target)),
             esc(e.label)]
            for e in edges
        ],
    )  # fmt: skip
    return (
        f'<figure class="chart">{"".join(parts)}<figcaption>{esc(title)}</figcaption>'
        f'<details class="numbers"><summary>Lineage as a table</summary>{numbers}</details>'
        "</figure>"
    )
