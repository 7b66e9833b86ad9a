"""The lineage graph drawn as one server-rendered SVG (no script: the console's CSP allows
none inline), left to right: each node's column is the length of the longest path reaching
it, so data stands left of the models made from it and deployments stand right. Nodes link
to their console pages; each edge carries its relation as a title (tooltip) and the same
facts are given as a table for screen readers. The drawing is ``role="group"``, not ``img``:
its nodes are links, and an image's content is not reachable (axe-core reports links inside
one as nested interactive controls; the browser tour caught it)."""

from __future__ import annotations

from collections import defaultdict

from medops.core.svg import esc
from medops.lineage.schemas import LineageGraph

BOX_W, BOX_H, GAP_Y, COL_GAP, TOP, PAD = 190, 34, 16, 80, 16, 10
KIND_LABEL = {"dataset_version": "data", "model_version": "model", "alias": "alias",
              "deployment": "deployment"}  # fmt: skip


def _short(text: str, limit: int = 27) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def columns(graph: LineageGraph) -> dict[str, int]:
    """Each node's column: 0 without an edge in, else one more than its deepest source
    (bounded by the node count, so a cycle cannot loop)."""
    keys = [n.key for n in graph.nodes]
    column = dict.fromkeys(keys, 0)
    for _ in range(len(keys)):
        changed = False
        for edge in graph.edges:
            if edge.source in column and edge.target in column and edge.source != edge.target:
                wanted = column[edge.source] + 1
                if wanted > column[edge.target] and wanted < len(keys):
                    column[edge.target] = wanted
                    changed = True
        if not changed:
            break
    return column


def draw(graph: LineageGraph, *, title: str) -> str:
    """The SVG of ``graph`` (its root outlined)."""
    column = columns(graph)
    rows: dict[int, int] = defaultdict(int)
    where: dict[str, tuple[float, float]] = {}
    for node in graph.nodes:
        col = column[node.key]
        where[node.key] = (PAD + col * (BOX_W + COL_GAP), TOP + rows[col] * (BOX_H + GAP_Y))
        rows[col] += 1
    width = PAD * 2 + (max(column.values(), default=0) + 1) * (BOX_W + COL_GAP) - COL_GAP
    height = TOP + max(rows.values(), default=1) * (BOX_H + GAP_Y) + PAD
    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" role="group" aria-label="{esc(title)}">'
            f"<title>{esc(title)}</title>"
            '<defs><marker id="lineage-arrow" viewBox="0 0 10 10" refX="10" refY="5" '
            'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
            '<path d="M 0 0 L 10 5 L 0 10 z" class="f0"/></marker></defs>'
        )
    ]
    for edge in graph.edges:
        if edge.source not in where or edge.target not in where:
            continue
        (x1, y1), (x2, y2) = where[edge.source], where[edge.target]
        sx, sy, ex, ey = x1 + BOX_W, y1 + BOX_H / 2, x2, y2 + BOX_H / 2
        bend = (sx + ex) / 2 if ex > sx else sx + 40
        parts.append(
            f'<path d="M {sx:.0f} {sy:.0f} C {bend:.0f} {sy:.0f} {bend:.0f} {ey:.0f} '
            f'{ex:.0f} {ey:.0f}" class="s0" fill="none" marker-end="url(#lineage-arrow)">'
            f"<title>{esc(edge.relation)}</title></path>"
        )
    for node in graph.nodes:
        x, y = where[node.key]
        outline = ' stroke-width="3"' if node.key == graph.root else ""
        dash = ' stroke-dasharray="4 3"' if node.deleted else ""
        box = (
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{BOX_W}" height="{BOX_H}" rx="4" '
            f'class="node"{outline}{dash}/>'
            f'<text x="{x + 8:.0f}" y="{y + 14:.0f}" font-size="10">'
            f"{esc(KIND_LABEL[node.kind])}{' (deleted)' if node.deleted else ''}</text>"
            f'<text x="{x + 8:.0f}" y="{y + 28:.0f}">{esc(_short(node.label))}</text>'
        )
        tip = f"<title>{esc(node.label)}{' — ' + esc(node.detail) if node.detail else ''}</title>"
        wrap = f'<a href="{esc(node.href)}">' if node.href else "<g>"
        parts.append(f"{wrap}{box}{tip}{'</a>' if node.href else '</g>'}")
    parts.append("</svg>")
    return "".join(parts)
