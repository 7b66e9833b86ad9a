"""``medops lineage``: the graph around a dataset version, model version or deployment
(``show``), what a dataset version reaches downstream (``impact``), and sending the waiting
OpenLineage events (``send``). Every command answers ``--json``."""

from __future__ import annotations

import typer
from rich.tree import Tree

from medops.cli.common import client
from medops.cli.output import JsonOption, console, print_json, print_record, print_table
from medops.lineage.schemas import ImpactReport, LineageGraph

app = typer.Typer(
    help="Lineage: which data made which model, where it serves, what it predicted.",
    no_args_is_help=True,
)


def _tree(graph: LineageGraph, start: str, *, upstream: bool) -> Tree:
    """The graph from ``start`` one way, as a tree (a node met twice is shown once)."""
    labels = {n.key: n.label + (" (deleted)" if n.deleted else "") for n in graph.nodes}
    tree = Tree(labels.get(start, start))
    seen = {start}

    def grow(branch: Tree, node: str) -> None:
        for edge in graph.edges:
            near, far = (edge.target, edge.source) if upstream else (edge.source, edge.target)
            if near != node or far in seen or far not in labels:
                continue
            seen.add(far)
            grow(branch.add(f"{labels[far]}  [dim]{edge.relation}[/]"), far)

    grow(tree, start)
    return tree


@app.command("show")
def show(
    ref: str = typer.Argument(
        ..., help="data:NAME@VERSION, model:NAME/VERSION (or NAME@ALIAS), deployment:NAME."
    ),
    json_output: bool = JsonOption,
) -> None:
    """Everything upstream (what it was made from) and downstream (what was made from it,
    where it serves) of one node."""
    with client() as c:
        graph = c.lineage(ref)
    if json_output:
        print_json(graph)
        return
    console.print("[bold]upstream[/] (made from)")
    console.print(_tree(graph, graph.root, upstream=True))
    console.print("[bold]downstream[/] (made from it, serving it)")
    console.print(_tree(graph, graph.root, upstream=False))
    print_table(
        "Nodes",
        ("node", "kind", "detail"),
        [(n.label, n.kind + (" (deleted)" if n.deleted else ""), n.detail) for n in graph.nodes],
    )


def _show_impact(report: ImpactReport) -> None:
    print_record(
        f"Impact of {report.dataset}",
        {
            "root": report.root,
            "derived versions": ", ".join(report.derived) or "-",
            "model versions": len(report.models),
            "deployments": ", ".join(report.deployments) or "-",
            "serving now": report.serving_now,
            "predictions": report.predictions,
            "monitoring windows": report.windows,
        },
    )
    print_table(
        "Model versions",
        ("model version", "used as", "path", "aliases"),
        [(m.ref, m.relation, " -> ".join(m.path), ", ".join(m.aliases) or "-")
         for m in report.models],
    )  # fmt: skip
    print_table(
        "Deployments",
        ("deployment", "model version", "arm", "serving now", "predictions", "windows",
         "drifted", "last verdict"),
        [(s.deployment, f"{s.model}/{s.version}",
          s.arm + (f" {s.canary_percent}%" if s.canary_percent is not None else ""),
          s.serving_now, s.predictions, s.windows, s.drifted_windows, s.last_window_verdict)
         for m in report.models for s in m.serving],
    )  # fmt: skip


@app.command("impact")
def impact(
    dataset: str = typer.Argument(..., help="NAME@VERSION of a dataset version."),
    json_output: bool = JsonOption,
) -> None:
    """Every derived dataset version, model version, alias and deployment downstream of a
    dataset version, whether each serves now, and its predictions and monitoring windows."""
    with client() as c:
        report = c.lineage_impact(dataset)
    if json_output:
        print_json(report)
        return
    _show_impact(report)


@app.command("send")
def send(json_output: bool = JsonOption) -> None:
    """Send the waiting OpenLineage events to MEDOPS_OPENLINEAGE_URL now (the server also
    does, every 30 seconds, while it is set)."""
    with client() as c:
        summary = c.send_lineage()
    if json_output:
        print_json(summary)
        return
    print_record(
        "OpenLineage events",
        {
            "target": summary.target or "none (set MEDOPS_OPENLINEAGE_URL)",
            "sent": summary.sent,
            "failed": summary.failed,
            "waiting": summary.pending,
        },
    )
