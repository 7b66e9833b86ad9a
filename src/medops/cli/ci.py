"""Continuous integration for models: the gate a model repository's pipeline runs.

``medops ci gate REF`` checks a registered version against the promotion gates of its
model's policy (artifact, ONNX parity, validation report, model card; signatures are
pending until people sign) and exits 1 when one fails, with a table, ``--json``, or a
pull-request comment in Markdown (``--markdown FILE``). The workflow templates that run it
are in deploy/ci-templates/ (docs/model-ci.md).
"""

from __future__ import annotations

from pathlib import Path

import typer

from medops.cli.common import client
from medops.cli.output import JsonOption, console, print_json, print_table
from medops.files import write_output

app = typer.Typer(
    help="Continuous integration for models: the gate a model repository's pipeline runs.",
    no_args_is_help=True,
)


@app.command("gate")
def gate(
    ref: str = typer.Argument(..., help="NAME/VERSION, NAME@ALIAS or NAME (its latest)."),
    alias: str = typer.Option(
        "production", "--alias", help="Judge against the gates of moving this alias."
    ),
    require_approvals: bool = typer.Option(
        False,
        "--require-approvals",
        help="Fail when the policy's signatures are missing (default: shown as pending).",
    ),
    markdown: Path | None = typer.Option(
        None, "--markdown", help="Write the summary as a pull-request comment (Markdown)."
    ),
    json_output: bool = JsonOption,
) -> None:
    """Exit 0 when the version passes its gates, 1 when any fails (named in the summary)."""
    from medops.errors import NotFoundError
    from medops.registry.cigate import judge, to_markdown

    with client() as c:
        version = c.get_version(ref)
        exact = f"{version.model}/{version.version}"
        gates = c.gates(exact, alias)
        try:
            report = c.report(exact)
        except NotFoundError:
            report = None
        card = c.card(exact)
    result = judge(
        version,
        gates,
        report,
        list(card["completeness"]["missing"]),
        require_approvals=require_approvals,
    )
    if markdown is not None:
        write_output(markdown, to_markdown(result))
    if json_output:
        print_json(result)
    else:
        print_table(
            f"CI gate of {result.model}/{result.version} for @{result.alias}: "
            + ("passed" if result.passed else "failed"),
            ("check", "verdict", "detail"),
            [(c.name, c.status, c.detail) for c in result.checks],
        )
        if not result.passed:
            failed = ", ".join(c.name for c in result.failed)
            console.print(f"failed: {failed}", markup=False, highlight=False)
    if not result.passed:
        raise typer.Exit(1)
