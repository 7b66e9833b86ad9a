"""Lineage in the console. ``lineage_svg``: a model's lineage as a small left-to-right graph
(training data -> versions -> aliases -> deployments) for the model page. The page
``/lineage?ref=...`` (``lineage:read``): the whole graph around a dataset version, model
version or deployment (``medops.lineage.svg``), its nodes and edges as tables, and for a
dataset version its impact: model versions, deployments, whether serving now, predictions
and monitoring windows. Server-rendered SVG and a plain GET form: no script."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from medops.api.console.errors import CONSOLE_TAG
from medops.api.console.layout import badge, cell, link, page, section, table, viewer_of
from medops.api.deps import ServicesDep, require
from medops.context import Context
from medops.core.permissions import Permission
from medops.core.svg import esc
from medops.lineage import svg
from medops.lineage.schemas import ImpactReport, LineageGraph

router = APIRouter(include_in_schema=False, tags=[CONSOLE_TAG])
Reader = Annotated[Context, Depends(require(Permission.LINEAGE_READ))]

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


def _form(ref: str) -> str:
    return (
        '<form method="get" action="/lineage" class="inline">'
        '<label for="lineage-ref">Node</label> '
        f'<input id="lineage-ref" name="ref" value="{esc(ref)}" size="40" '
        'placeholder="data:NAME@VERSION, model:NAME/VERSION or deployment:NAME" required> '
        '<button type="submit">Show</button></form>'
    )


def _graph_section(graph: LineageGraph, ref: str) -> str:
    labels = {n.key: n.label for n in graph.nodes}
    drawing = svg.draw(graph, title=f"Lineage of {ref}")
    nodes = table(
        ["node", "kind", "", "detail"],
        [[link(n.href, n.label) if n.href else esc(n.label), esc(n.kind),
          badge("deleted", "bad") if n.deleted else
          (badge("this", "info") if n.key == graph.root else ""), cell(n.detail)]
         for n in graph.nodes],
    )  # fmt: skip
    edges = table(
        ["from", "to", "relation"],
        [[esc(labels.get(e.source, e.source)), esc(labels.get(e.target, e.target)),
          esc(e.relation)] for e in graph.edges],
    )  # fmt: skip
    return (
        f'<figure class="chart">{drawing}<figcaption>{esc(ref)}: '
        f"{len(graph.upstream)} upstream, {len(graph.downstream)} downstream</figcaption>"
        f'<details class="numbers"><summary>Edges as a table</summary>{edges}</details>'
        f"</figure>{nodes}"
    )


def _impact_section(report: ImpactReport) -> str:
    rows = [
        [link(f"/models/{s.model}/versions/{s.version}", f"{s.model}/{s.version}"),
         link(f"/deployments/{s.deployment}", s.deployment),
         esc(s.arm + (f" {s.canary_percent}%" if s.canary_percent is not None else "")),
         badge("serving now", "warn") if s.serving_now else badge("not serving", "muted"),
         cell(s.predictions), cell(s.windows), cell(s.drifted_windows),
         cell(s.last_window_verdict)]
        for m in report.models for s in m.serving
    ]  # fmt: skip
    models = table(
        ["model version", "used as", "path", "aliases"],
        [[link(f"/models/{m.model}/versions/{m.version}", m.ref), esc(m.relation),
          esc(" → ".join(m.path)), esc(", ".join(m.aliases) or "—")] for m in report.models],
    )  # fmt: skip
    serving = table(
        ["model version", "deployment", "arm", "", "predictions", "windows", "drifted",
         "last verdict"],
        rows,
    )  # fmt: skip
    headline = badge("serving patients now", "warn") if report.serving_now else badge("not serving")
    return (
        f"<p>{headline} {len(report.models)} model version(s), "
        f"{len(report.deployments)} deployment(s), {report.predictions} prediction(s), "
        f"{report.windows} monitoring window(s) downstream of {esc(report.dataset)}.</p>"
        + models
        + serving
    )


@router.get("/lineage", name="console.lineage", response_class=HTMLResponse)
async def lineage_page(
    services: ServicesDep,
    ctx: Reader,
    ref: Annotated[str, Query(max_length=300)] = "",
) -> Response:
    """The graph around one node; for a dataset version, its impact too."""
    actor = viewer_of(ctx)
    crumbs: list[tuple[str, str | None]] = [("Lineage", "/lineage")]
    body = _form(ref)
    if ref:
        graph = await run_in_threadpool(services.lineage.show, ref)
        body += section("Graph", _graph_section(graph, ref))
        root = next(n for n in graph.nodes if n.key == graph.root)
        if root.kind == "dataset_version":
            report = await run_in_threadpool(services.lineage.impact, root.label)
            body += section("Impact", _impact_section(report))
        crumbs.append((ref, None))
    return page(f"Lineage {ref}".strip(), body, actor=actor, active="lineage", crumbs=crumbs)
